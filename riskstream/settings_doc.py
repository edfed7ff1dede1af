"""The README's settings table, generated from the settings tree (``python -m
riskstream.settings_doc``), so the documentation cannot drift from the code."""

from __future__ import annotations

from pydantic import BaseModel, SecretStr

from riskstream.settings import REPO_ROOT, Settings


def _rows(model: type[BaseModel], env: str) -> list[str]:
    rows: list[str] = []
    for name, field in model.model_fields.items():
        ann = field.annotation
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            rows += _rows(ann, f"{env}{name.upper()}__")
            continue
        default = field.default
        if isinstance(default, SecretStr):
            default = default.get_secret_value()
        text = str(getattr(default, "value", default))
        if text.startswith(str(REPO_ROOT)):
            text = "<repo>" + text[len(str(REPO_ROOT)) :]
        rows.append(f"| `{env}{name.upper()}` | `{text}` | {field.description} |")
    return rows


def settings_table() -> str:
    return "\n".join(["| variable | default | meaning |", "|---|---|---|", *_rows(Settings, "RISKSTREAM_")])


if __name__ == "__main__":
    print(settings_table())
