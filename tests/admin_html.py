"""Reading Django admin's change forms in tests: a select box and its options."""

import re


def select(html: str, name: str) -> str:
    found = re.search(rf'<select name="{name}".*?</select>', html, re.S)
    assert found, f"no select {name!r}"
    return found.group(0)


def options(html: str, name: str) -> list[str]:
    return [text.strip() for text in re.findall(r"<option[^>]*>(.*?)</option>", select(html, name), re.S)]
