"""Offline: Parquet files of the input topics, replayed to a broker or backtested without one."""
