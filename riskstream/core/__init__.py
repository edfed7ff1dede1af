"""The pure core: windows, state, detectors and scoring rules.

Nothing here imports faust, sqlalchemy, vllm or prometheus; every function is testable with
hand-built events and no broker.
"""
