"""What a template reads, as validation sees it, is what Jinja's own analysis says.

Validation walks the tree of a template that binds no names itself (cheap) and asks
Jinja's ``meta.find_undeclared_variables`` (which generates the template's code) for
the others; both ways must give the same names, and one parse gives the syntax too.
"""

from __future__ import annotations

import pytest
from jinja2 import meta

from conductor_nb.model import templates

TEMPLATES = [
    "{{ params.x }}",
    "{{ params['y'] ~ inputs.rows | length }}",
    "{{ range(3) | list }}",
    "{{ dict(a=1) }}",
    "{{ x if y else z }}",
    "{{ x is defined and now }}",
    "{% if params.a %}{{ run.id }}{% else %}{{ env.HOME | shquote }}{% endif %}",
    "{{ self }}",
    "{{ loop }} {{ caller }} {{ lipsum }}",
    "{% for i in items %}{{ i }}{{ loop.index }}{% endfor %}",
    "{% set a = 1 %}{{ a + b }}",
    "{% with a = c %}{{ a }}{% endwith %}",
    "{% macro m(v) %}{{ v ~ w }}{% endmacro %}{{ m(1) }}",
    "{% filter upper %}{{ q }}{% endfilter %}",
    "plain text {{ (a, [b, c], {'k': d}) }}",
]


@pytest.mark.parametrize("text", TEMPLATES)
def test_template_reads_are_jinjas_undeclared_variables(text: str) -> None:
    problem, reads = templates.template_facts(text)
    assert problem is None and reads is not None
    tree = templates.environment().parse(text)
    assert set(reads.names) == meta.find_undeclared_variables(tree)
    assert reads == templates.template_reads(text)
    assert set(reads.params) == templates.referenced_params(text)


@pytest.mark.parametrize("text", ["{{ oops", "line one\n{{ b }", "{% if a %}no end"])
def test_a_syntax_error_is_worded_as_check_syntax_words_it(text: str) -> None:
    problem, reads = templates.template_facts(text)
    assert reads is None and problem == templates.check_syntax(text)
    assert problem is not None and problem.startswith("bad template syntax")
