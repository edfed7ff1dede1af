"""The README's settings table, generated from the settings tree (``python -m
riskstream.settings_doc --write`` updates README.md), so the documentation cannot drift."""

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


def update_readme() -> None:
    """Replace the README's table (from its header row to the blank line) with the current one."""
    readme = REPO_ROOT / "README.md"
    text = readme.read_text()
    start = text.index("| variable | default | meaning |")
    end = text.index("\n\n", start)
    readme.write_text(text[:start] + settings_table() + text[end:])


if __name__ == "__main__":
    import sys

    if "--write" in sys.argv:
        update_readme()
    else:
        print(settings_table())
