"""Modbus TCP adapter: polling devices through register maps, and writing charger setpoints."""
