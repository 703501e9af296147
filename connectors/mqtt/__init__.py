"""MQTT connector: IoT devices (JSON telemetry, HJ 212 packets, status/LWT) and video analytics events."""
