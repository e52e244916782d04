"""OCPP 1.6J and 2.0.1 central system: stations in, readings out; setpoints as charging profiles."""
