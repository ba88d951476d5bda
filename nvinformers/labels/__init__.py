"""Kubernetes label selectors: the Python peer of ``k8s.io/apimachinery/pkg/labels``.

Grammar (``labels.Parse``), requirements joined by commas (AND)::

    k=v   k==v   k!=v          equality / inequality (k==v keeps its spelling in str())
    k in (a,b)   k notin (a,b) set membership; "()" means the set {""}
    k     !k                   the key exists / does not exist
    k>n   k<n                  the label value, read as a base-10 int64, is greater / less than n
    ""                         the empty selector: matches everything

Whitespace (space, tab, CR, LF) may separate any two tokens. Keys are qualified names: an
optional DNS-1123 subdomain prefix (at most 253 characters) and ``/``, then a name of at most 63
characters of ``[A-Za-z0-9]`` with ``-``, ``_`` and ``.`` inside. Values are at most 63 characters
of the same alphabet and may be empty. As in Kubernetes, ``!=`` and ``notin`` match objects that
lack the key, while ``>`` and ``<`` never do (nor do values that are not integers).

:func:`parse` raises :class:`SelectorParseError` (a ``ValueError``) naming the selector, the
0-based position of the offending token and what was expected there::

    >>> parse("a in (b")
    Traceback (most recent call last):
    ...
    SelectorParseError: invalid label selector "a in (b": expected ")" at position 7

A :class:`Selector` is immutable and hashable; ``str(selector)`` is the canonical Kubernetes form
(requirements sorted by key, set values sorted), which parses back to an equal selector.
Matching is compiled once per requirement, so filtering a 10,000-object cache costs a few
milliseconds (one dictionary probe per object for the common ``key=value`` selector).

Thread-safety: everything here is immutable; selectors may be shared between threads freely.

Layout: ``_validation`` (label keys and values) ← ``_requirement`` (:class:`Requirement`,
:class:`Operator`) ← ``_parser`` (lexer, parser, :class:`SelectorParseError`) ← ``_selector``
(:class:`Selector`, :func:`parse` and the constructors); each imports only those to its left.
"""

from nvinformers.labels._parser import SelectorParseError
from nvinformers.labels._requirement import Operator, Requirement
from nvinformers.labels._selector import (
    Selector,
    everything,
    nothing,
    parse,
    selector_from_set,
    selector_from_validated_set,
)
from nvinformers.labels._validation import validate_label_key, validate_label_value

__all__ = [
    "Operator",
    "Requirement",
    "Selector",
    "SelectorParseError",
    "parse",
    "everything",
    "nothing",
    "selector_from_set",
    "selector_from_validated_set",
    "validate_label_key",
    "validate_label_value",
]

# Pickles and reprs name the public home, as before the split (a Selector pickles as
# ``nvinformers.labels.parse``), so renaming a private module never breaks a stored pickle.
for _public in (Operator, Requirement, Selector, SelectorParseError, parse, nothing):
    _public.__module__ = __name__
del _public
