"""riskstream: real-time market-risk and trade-surveillance on Kafka."""

__version__ = "0.1.0"
