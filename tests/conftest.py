"""Hypothesis without wall-clock limits: its per-example deadline and its too-slow health check
fail a property test because the machine is loaded, not because the property broke (seen with
the LLM engine running beside the unit suite). The examples and their number stay the same."""

from hypothesis import HealthCheck, settings

settings.register_profile(
    "riskstream", deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.large_base_example]
)
settings.load_profile("riskstream")
