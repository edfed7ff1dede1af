from __future__ import annotations

import pytest
from pydantic import ValidationError

from riskstream.settings import Settings


def test_window_shorter_than_the_spoofing_look_back_is_refused() -> None:
    with pytest.raises(ValidationError, match="spoofing look-back"):
        Settings(windows={"activity_window_s": 9.0}, detectors={"spoof_cancel_within_s": 5.0})


def test_window_covering_the_look_back_is_accepted() -> None:
    s = Settings(windows={"activity_window_s": 10.0}, detectors={"spoof_cancel_within_s": 5.0})
    assert s.windows.activity_window_s == 10.0
