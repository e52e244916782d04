"""Storage backends behind one interface: InfluxDB 1.x, InfluxDB 2.x/3.x (v2 API), embedded."""
