"""What operators look at: the dashboard's panels (one list for Grafana and ``riskstream top``)."""
