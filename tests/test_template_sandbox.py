"""The template sandbox caps what a template (written by CMs, loaded at run time) may compute: no
{{ 10**10**6 }}, no 100 MB string, no endless output; ordinary templates are untouched."""

from __future__ import annotations

import time

import pytest

from alerts.domain import Alert
from channels.base import Limits
from rules.templates import TemplateRenderError, Templates

WEB = Limits(counting="none", max_length=100_000)
SMS = Limits(counting="sms", max_segments=3)


def alert() -> Alert:
    return Alert(
        title="Neige sur la RD 957", text="Prudence.", territories=("41",), hashtags=("#route41",), channels=("sms",)
    )


HOSTILE = [
    "{{ 10**(10**6) }}",  # (Jinja reads 10**10**6 as (10**10)**6, a mere 10**60)
    "{{ 2**100000 }}",
    "{{ (2**4000) * (2**4000) * (2**4000) }}",
    "{{ 'x' * 100000000 }}",
    "{{ 100000000 * 'x' }}",
    "{{ ['x'] * 100000000 }}",
    "{% set a = 'x' * 15000 %}{{ a + a }}",
    "{{ '%100000000d' % 1 }}",
    "{{ '%*d' % (100000000, 1) }}",
    "{{ '%100000000d' | format(1) }}",
    "{{ 'x' | center(100000000) }}",
    "{{ 'x' | indent(100000000, true) }}",
    "{{ '{:>100000000}'.format(1) }}",
    "{% for i in range(100000000) %}x{% endfor %}",
    "{% for i in range(1000) %}{% for j in range(1000) %}xxxxxxxxxxxxxxxxxxxxxxxx{% endfor %}{% endfor %}",
    "{{ 1.5 ** 100000 }}",
]


@pytest.mark.parametrize("source", HOSTILE)
def test_hostile_templates_fail_fast_with_a_named_error(source: str) -> None:
    started = time.perf_counter()
    with pytest.raises(TemplateRenderError, match="template 't'"):
        Templates({"t": source}).render(alert(), "web", WEB, "t")
    assert time.perf_counter() - started < 5  # refused, not computed (a loose bound: the point is no hang)


def test_ordinary_templates_still_compute() -> None:
    source = (
        "{{ title|upper }} {{ '%02d' % 7 }} {{ 2**10 }} {{ '-' * 10 }} {{ 'x'|center(12) }}"
        "{% for i in range(3) %}{{ i }}{% endfor %} {{ text|truncate(50) }} {{ '%s/%s' | format(1, 2) }}"
    )
    rendered = Templates({"t": source}).render(alert(), "web", WEB, "t").text
    assert rendered.startswith("NEIGE SUR LA RD 957 07 1024 ---------- ")
    assert "012 Prudence. 1/2" in rendered
