"""MQTT adapter (paho-mqtt 2.x, MQTT 5): telemetry in, rejections and setpoints out."""
