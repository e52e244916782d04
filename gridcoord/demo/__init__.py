"""`gridcoord demo`: the simulated city end to end over MQTT, on embedded defaults."""
