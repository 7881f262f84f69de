"""CountVectorizer / TfidfVectorizer as sklearn computes them: our converter replaces skl2onnx's.

skl2onnx 1.20's text converter is exact only for the simplest vocabularies. What it gets wrong, and
what this one does instead (every fix measured against sklearn on real documents):

* stop words: it hands them (with the terms ``min_df``/``max_df`` pruned, ``stop_words_``) to a
  ``StringNormalizer`` applied to whole *documents*, so they are never removed from the token
  stream — bigrams around a stop word come out wrong (0.46 off) — and a document equal to a pruned
  term is dropped from the batch. Here stop words are removed from the tokens, before the n-grams,
  as sklearn does; pruned terms are simply absent from the vocabulary.
* token patterns: RE2 (onnxruntime's engine) has ASCII ``\\w``/``\\d``/``\\s``/``\\b``; skl2onnx
  replaces sklearn's default by ``[a-zA-Z0-9_]+`` (one-letter tokens kept, accents split). Here the
  pattern is translated with Python's own Unicode classes written out as code-point ranges (exact
  for every character this Python knows) — or refused when RE2 cannot express it.
* ``analyzer="char"``: whitespace runs collapse to one space first (sklearn's ``\\s\\s+``).
* ``analyzer="char_wb"`` (refused by skl2onnx): n-grams of each space-padded word, built on one
  token stream where each word is padded by spaces (an n-gram across two words always holds an
  inner space, which no vocabulary entry has), with sklearn's count of the pad space itself.
* ``sublinear_tf``: skl2onnx computes ``log(tf + 1)``; sklearn ``1 + log(tf)`` where tf > 0
  (1.6 off on a TF-IDF value without norm, 0.01 with it).
* lower-casing uses the ``C.UTF-8`` locale (``en_US.UTF-8`` is missing on slim systems and
  onnxruntime then refuses the model).

Tokens are the rows of onnxruntime's ``Tokenizer`` (N, T), padded at the end; removing tokens
(stop words, collapsed whitespace) keeps the others in order: a stable sort on (removed, position)
with TopK, then the removed ones become padding. ``TfIdfVectorizer`` (mode TF) counts the n-grams.
"""

from __future__ import annotations

import functools
import re
from typing import Any

import numpy as np
from onnx import TensorProto

from exporter.convert.emit import Emit
from exporter.errors import UnsupportedStepError

PORTABLE_LOCALE = "C.UTF-8"
_ALIAS = "SklearnCountVectorizer"
_OPTIONS = {
    "tokenexp": None,
    "separators": None,
    "nan": [True, False],
    "keep_empty_string": [True, False],
    "locale": None,
}
_installed = False


def install() -> None:
    """Replace skl2onnx's CountVectorizer converter (TfidfVectorizer's calls it too). Idempotent."""
    global _installed
    if _installed:
        return
    from skl2onnx.common._registration import register_converter, register_shape_calculator

    register_converter(_ALIAS, convert_text_counts, overwrite=True, options=_OPTIONS)
    register_shape_calculator("SklearnTfidfTransformer", _tfidf_shape, overwrite=True)
    register_converter(
        "SklearnTfidfTransformer", convert_tfidf_weights, overwrite=True, options={"nan": [True, False]}
    )
    _installed = True


# -- what sklearn does, in Python: checked and planned before any node is written ------------------


@functools.cache
def _every_character() -> str:
    """Every code point but the surrogates, in order: Python's regex engine scans it in C."""
    return "".join(map(chr, range(0xD800))) + "".join(map(chr, range(0xE000, 0x110000)))


@functools.cache
def _python_class(kind: str) -> str:
    """Python's Unicode ``\\w`` / ``\\d`` / ``\\s`` as RE2 code-point ranges (no brackets)."""
    ranges: list[tuple[int, int]] = []
    gap = 0xD800  # the surrogates are left out of _every_character: codes jump there
    for match in re.finditer(rf"\{kind}+", _every_character()):
        start, end = match.start(), match.end() - 1
        if start < gap <= end:
            ranges += [(start, gap - 1), (gap + 0x800, end + 0x800)]
        else:
            shift = 0x800 if start >= gap else 0
            ranges.append((start + shift, end + shift))
    return "".join(rf"\x{{{a:X}}}" if a == b else rf"\x{{{a:X}}}-\x{{{b:X}}}" for a, b in ranges)


@functools.cache
def whitespace() -> tuple[str, ...]:
    """The characters Python's ``\\s`` and ``str.split()`` treat as whitespace."""
    return tuple(re.findall(r"\s", _every_character()))


@functools.cache
def _non_word_characters() -> str:
    return re.sub(r"\w+", "", _every_character())


class _Refused(Exception):
    pass


def re2_token_pattern(pattern: str, max_n: int) -> str:
    """An RE2 pattern whose matches are sklearn's tokens (``re.findall(pattern, doc)``), or raise
    ``_Refused`` naming the construct RE2 cannot reproduce.

    ``\\b...\\b`` around a word-only body: its matches are the maximal runs of word characters that
    the body matches whole. For ``\\w`` repeated (``\\w\\w+``, ``\\w+``, ``\\w{3,}``) that is
    ``[W]{m,}`` exactly. For a narrower body (``[a-zA-Z]{2,}``) RE2 yields every run; with unigrams
    only the vocabulary entries (which the body matches) are counted, so that is exact too, but
    with n-grams the runs sklearn skips would break them: refused."""
    compiled = re.compile(pattern)
    if compiled.groups:
        raise _Refused("a capturing group (sklearn keeps the group's text; RE2 would keep the whole match)")
    if compiled.fullmatch(""):
        raise _Refused("a pattern that matches the empty string")
    body = pattern[4:] if pattern.startswith("(?u)") else pattern
    word = _python_class("w")
    if body.startswith(r"\b") and body.endswith(r"\b") and len(body) > 4:
        inner = body[2:-2]
        minimum = _word_repetition(inner)
        if minimum is not None:
            return f"[{word}]{{{minimum},}}"
        if not _word_only(inner):
            raise _Refused(r"\b around a body that can match non-word characters")
        if max_n > 1:
            raise _Refused(
                r"\b around a narrower class than \w together with n-grams (RE2 cannot skip the runs "
                "sklearn skips)"
            )
        return f"[{word}]+"
    return _translate(body)


def _word_repetition(inner: str) -> int | None:
    """``\\w\\w+`` → 2, ``\\w+`` → 1, ``\\w{3,}`` → 3; None for anything else."""
    match = re.fullmatch(r"((?:\\w)*)\\w(\+|\*|\{(\d+),\})", inner)
    if match is None:
        return None
    before = len(match.group(1)) // 2
    if match.group(2) == "+":
        return before + 1
    if match.group(2) == "*":
        return before if before else None
    return before + int(match.group(3))


def _word_only(inner: str) -> bool:
    """Whether ``inner`` (atoms and quantifiers, no groups or alternation) matches word characters
    only: every atom — an escape, a class, a literal — accepts nothing else."""
    if any(c in inner for c in "()|.^$"):
        return False
    atoms = re.sub(r"\{\d*,?\d*\}|[+*?]", "", inner)
    for atom in re.findall(r"\[(?:\\.|[^\]])*\]|\\.|.", atoms):
        try:
            probe = re.compile(atom)
        except re.error:
            return False
        if probe.search(_non_word_characters()):
            return False
    return True


_CLASS_ESCAPES = {"w": "w", "d": "d", "s": "s"}


def _translate(body: str) -> str:
    """Python regex → RE2, for the constructs both read alike once ``\\w\\d\\s`` are spelled out."""
    out: list[str] = []
    i = 0
    while i < len(body):
        c = body[i]
        if c == "\\":
            nxt = body[i + 1 : i + 2]
            if nxt in _CLASS_ESCAPES:
                out.append(f"[{_python_class(nxt)}]")
            elif nxt in ("W", "D", "S"):
                out.append(f"[^{_python_class(nxt.lower())}]")
            elif nxt in ("b", "B", "A", "Z", "z", "G") or nxt.isdigit():
                raise _Refused(rf"\{nxt} here (RE2's is ASCII-only or missing)")
            else:
                out.append(body[i : i + 2])
            i += 2
        elif c == "[":
            end = _class_end(body, i)
            out.append(_translate_class(body[i : end + 1]))
            i = end + 1
        elif c == "(":
            if body.startswith("(?:", i):
                out.append("(?:")
                i += 3
            else:
                raise _Refused(f"the group {body[i : i + 3]!r} (lookarounds, flags and named groups)")
        elif c == ".":
            out.append(r"[^\n]")  # Python's dot stops at newlines; onnxruntime's Tokenizer's does not
            i += 1
        elif c in "^$":
            raise _Refused(f"the anchor {c!r}")
        elif c == "{" and body.startswith("{,", i):
            out.append("{0,")
            i += 2
        elif c in "+*?}" and body[i + 1 : i + 2] == "+":
            raise _Refused("a possessive quantifier")
        else:
            out.append(c)
            i += 1
    return "".join(out)


def _class_end(body: str, start: int) -> int:
    i = start + 1
    if body[i : i + 1] == "^":
        i += 1
    if body[i : i + 1] == "]":
        i += 1
    while i < len(body) and body[i] != "]":
        i += 2 if body[i] == "\\" else 1
    if i >= len(body):
        raise _Refused("an unterminated character class")
    return i


def _translate_class(text: str) -> str:
    if "[:" in text or "[" in text[1:]:
        raise _Refused("a nested '[' inside a character class (RE2 reads '[:' as a POSIX class)")
    out, i = ["["], 1
    while i < len(text) - 1:
        if text[i] == "\\":
            nxt = text[i + 1]
            if nxt in _CLASS_ESCAPES:
                out.append(_python_class(nxt))
            elif nxt in ("W", "D", "S", "b"):
                raise _Refused(rf"\{nxt} inside a character class")
            else:
                out.append(text[i : i + 2])
            i += 2
        else:
            out.append(text[i])
            i += 1
    out.append("]")
    return "".join(out)


def _refuse(op: Any, why: str) -> UnsupportedStepError:
    return UnsupportedStepError(f"{type(op).__name__}: {why}")


def token_plan(op: Any) -> dict[str, Any]:
    """What the graph must do for this fitted vectorizer (pure Python; raises UnsupportedStepError
    for what it cannot reproduce exactly, naming the parameter and what to use instead)."""
    if callable(op.analyzer):
        raise _refuse(op, "a callable analyzer has no ONNX form: use analyzer='word', 'char' or 'char_wb'")
    if op.preprocessor is not None or op.tokenizer is not None:
        which = "preprocessor" if op.preprocessor is not None else "tokenizer"
        raise _refuse(op, f"a custom {which} has no ONNX form: use token_pattern (and lowercase) instead")
    if op.strip_accents is not None:
        raise _refuse(
            op, f"strip_accents={op.strip_accents!r} has no ONNX form: strip accents before the pipeline"
        )
    if getattr(op, "input", "content") != "content":
        raise _refuse(op, f"input={op.input!r}: the model takes the documents' text (input='content')")
    max_n = op.ngram_range[1]
    analyzer = op.analyzer
    vocabulary = op.vocabulary_
    if analyzer == "word":
        try:
            pattern = re2_token_pattern(op.token_pattern, max_n)
        except _Refused as why:
            raise _refuse(
                op,
                f"token_pattern={op.token_pattern!r} uses {why}, which onnxruntime's RE2 engine cannot "
                r"reproduce: use a pattern of character classes, \w\d\s and quantifiers (e.g. sklearn's "
                r"default (?u)\b\w\w+\b)",
            ) from None
        stop = sorted(op.get_stop_words() or ()) if max_n > 1 else []
        compiled = re.compile(op.token_pattern)
        grams = []
        for term, column in vocabulary.items():
            parts = term.split(" ") if max_n > 1 else [term]
            if len(parts) > 1 and compiled.fullmatch(term):
                raise _refuse(
                    op,
                    f"the token pattern matches spaces, so the n-gram {term!r} cannot be split into "
                    "tokens: use a token_pattern that never matches a space, or ngram_range=(1, 1)",
                )
            grams.append((tuple(parts), int(column)))
    else:
        pattern, stop = "(?s).", []
        grams = [(tuple(term), int(column)) for term, column in vocabulary.items()]
    if not grams:
        raise _refuse(op, "its vocabulary is empty")
    return {"analyzer": analyzer, "pattern": pattern, "stop": stop, "grams": grams}


def _pool(grams: list[tuple[tuple[str, ...], int]]) -> dict[str, Any]:
    """TfIdfVectorizer's attributes: n-grams grouped by length (1-grams first), flattened."""
    ordered = sorted(grams, key=lambda g: (len(g[0]), g[0]))
    longest = max(len(g) for g, _ in ordered)
    pool: list[str] = []
    counts = []
    for n in range(1, longest + 1):
        counts.append(len(pool))
        for gram, _ in ordered:
            if len(gram) == n:
                pool.extend(gram)
    return {
        "min_gram_length": min(len(g) for g, _ in ordered),
        "max_gram_length": longest,
        "max_skip_count": 0,
        "mode": "TF",
        "pool_strings": pool,
        "ngram_counts": counts,
        "ngram_indexes": [column for _, column in ordered],
    }


def _pad_value(grams: list[tuple[tuple[str, ...], int]]) -> str:
    tokens = {t for gram, _ in grams for t in gram}
    pad = "#"
    while pad in tokens:
        pad += "#"
    return pad


# -- the graph -----------------------------------------------------------------------------------


def convert_text_counts(scope: Any, operator: Any, container: Any) -> None:
    """skl2onnx converter: documents (N, 1) or (N,) strings → term counts (N, len(vocabulary_))."""
    op = operator.raw_operator
    plan = token_plan(op)
    grams = plan["grams"]
    pad = _pad_value(grams)
    g = Emit(scope, container)
    docs = g.node("Reshape", [operator.inputs[0].full_name, g.const(np.array([-1], np.int64))])
    if op.lowercase:
        docs = g.node(
            "StringNormalizer",
            [docs],
            case_change_action="LOWER",
            is_case_sensitive=0,
            locale=PORTABLE_LOCALE,
        )
    tokens = g.node(
        "Tokenizer",
        [docs],
        domain="com.microsoft",
        mark=0,
        mincharnum=1,
        pad_value=pad,
        tokenexp=plan["pattern"],
    )
    tokens = g.node("Flatten", [tokens], axis=1)  # (N, T); onnxruntime may answer (N, 1, T)
    # The Tokenizer (com.microsoft) has no ONNX type inference: a Cast states the type, without
    # which onnx's shape inference crashes (segfault) on the LabelEncoder below.
    tokens = g.cast(tokens, TensorProto.STRING)
    rows = _rows_by_one(g, tokens)
    words = None
    if plan["analyzer"] == "word" and plan["stop"]:
        stopped = g.node(
            "LabelEncoder",
            [tokens],
            domain="ai.onnx.ml",
            keys_strings=plan["stop"],
            values_int64s=[1] * len(plan["stop"]),
            default_int64=0,
        )
        tokens = _compact(g, tokens, g.cast(stopped, TensorProto.BOOL), pad)
    elif plan["analyzer"] == "char":
        tokens = _collapse_whitespace(g, tokens, rows, pad)
    elif plan["analyzer"] == "char_wb":
        tokens, words = _padded_words(g, tokens, rows, pad)
    counts = g.node("TfIdfVectorizer", [tokens], **_pool(grams))
    if words is not None and (" ",) in {gram for gram, _ in grams}:
        # sklearn counts the pad space twice per word (" w "); the stream has one between words.
        column = next(c for gram, c in grams if gram == (" ",))
        width = len(op.vocabulary_)
        keep = np.ones((1, width), np.float32)
        keep[0, column] = 0
        spaces = g.node("Mul", [words, g.const(np.array([2.0], np.float32))])
        counts = g.node(
            "Add",
            [g.node("Mul", [counts, g.const(keep)]), g.node("Mul", [spaces, g.const(1 - keep)])],
        )
    if op.binary:
        counts = g.cast(g.cast(counts, TensorProto.BOOL), TensorProto.FLOAT)
    out_type = operator.outputs[0].type
    if type(out_type).__name__ == "DoubleTensorType":
        counts = g.cast(counts, TensorProto.DOUBLE)
    g.node("Identity", [counts], out=operator.outputs[0].full_name)


def _tfidf_shape(operator: Any) -> None:
    """TfidfTransformer keeps its input's shape (skl2onnx 1.20 declares a batch of 1)."""
    operator.outputs[0].type.shape = [
        operator.inputs[0].get_first_dimension(),
        operator.inputs[0].type.shape[1],
    ]


def convert_tfidf_weights(scope: Any, operator: Any, container: Any) -> None:
    """skl2onnx converter for TfidfTransformer (and TfidfVectorizer's weighting): sublinear tf as
    sklearn, ``1 + log(tf)`` on non-zero counts; then idf and the row norm as skl2onnx writes them."""
    from skl2onnx.common._apply_operation import apply_normalizer
    from skl2onnx.operator_converters.tfidf_transformer import convert_sklearn_tfidf_transformer

    op = operator.raw_operator
    if container.get_options(op, {"nan": False}).get("nan"):
        convert_sklearn_tfidf_transformer(scope, operator, container)  # our graphs never ask for it
        return
    g = Emit(scope, container)
    double = type(operator.inputs[0].type).__name__ == "DoubleTensorType"
    dtype = np.float64 if double else np.float32
    x = operator.inputs[0].full_name
    if op.sublinear_tf:
        counted = g.node("Greater", [x, g.const(np.array([0], dtype))])
        logged = g.node("Add", [g.node("Log", [x]), g.const(np.array([1], dtype))])
        x = g.node("Where", [counted, logged, x])
    if op.use_idf:
        x = g.node("Mul", [x, g.const(np.asarray(op.idf_, dtype).ravel())])
    if op.norm is not None:
        normed = scope.get_unique_variable_name("tfidf_norm")
        apply_normalizer(scope, x, normed, container, norm=op.norm.upper(), use_float=not double)
        x = normed
    g.node("Identity", [x], out=operator.outputs[0].full_name)


def _rows_by_one(g: Emit, tokens: str) -> str:
    """The shape (N, 1) of a (N, T) tensor, for the columns the shifts bring in."""
    first = g.node(
        "Slice",
        [g.node("Shape", [tokens]), g.const(np.array([0], np.int64)), g.const(np.array([1], np.int64))],
    )
    return g.node("Concat", [first, g.const(np.array([1], np.int64))], axis=0)


def _compact(g: Emit, tokens: str, removed: str, pad: str) -> str:
    """Remove the tokens where ``removed`` (bool, N x T) holds, keeping the others in order."""
    width = g.node(
        "Slice",
        [g.node("Shape", [tokens]), g.const(np.array([1], np.int64)), g.const(np.array([2], np.int64))],
    )
    position = g.node(
        "Range",
        [
            g.const(np.array(0, np.int64)),
            g.node("Squeeze", [width, g.const(np.array([0], np.int64))]),
            g.const(np.array(1, np.int64)),
        ],
    )
    key = g.node("Add", [g.node("Mul", [g.cast(removed, TensorProto.INT64), width]), position])
    _, order = g.node("TopK", [key, width], n_out=2, axis=1, largest=0, sorted=1)
    kept = g.node("GatherElements", [tokens, order], axis=1)
    gone = g.node("GatherElements", [removed, order], axis=1)
    return g.node("Where", [gone, g.const(np.array(pad, dtype=object)), kept])


def _codes(g: Emit, tokens: str, pad: str) -> str:
    """Per token: 1 for a whitespace character, 2 for padding, 0 otherwise."""
    keys = [*whitespace(), pad]
    return g.node(
        "LabelEncoder",
        [tokens],
        domain="ai.onnx.ml",
        keys_strings=keys,
        values_int64s=[1] * (len(keys) - 1) + [2],
        default_int64=0,
    )


def _is(g: Emit, codes: str, value: int) -> str:
    return g.node("Equal", [codes, g.const(np.array([value], np.int64))])


def _collapse_whitespace(g: Emit, tokens: str, rows: str, pad: str) -> str:
    """sklearn's ``re.sub(r"\\s\\s+", " ", doc)`` on a character stream: a run of two or more
    whitespace characters becomes one space; a lone one stays as it is."""
    space = _is(g, _codes(g, tokens, pad), 1)
    before = g.shifted(space, rows, 1)
    after = g.shifted(space, rows, -1)
    run_start = g.node("And", [g.node("And", [space, g.node("Not", [before])]), after])
    tokens = g.node("Where", [run_start, g.const(np.array(" ", dtype=object)), tokens])
    return _compact(g, tokens, g.node("And", [space, before]), pad)


def _padded_words(g: Emit, tokens: str, rows: str, pad: str) -> tuple[str, str]:
    """sklearn's char_wb stream: ``" " + word + " "`` for each word of ``doc.split()``, the words
    separated by one space (so an n-gram spanning two words holds an inner space). Returns the
    stream and, per document, its number of words (N, 1) as float."""
    space_col = g.node("Expand", [g.const(np.array([[" "]], dtype=object)), rows])
    pad_col = g.node("Expand", [g.const(np.array([[pad]], dtype=object)), rows])
    tokens = g.node("Concat", [space_col, tokens, pad_col], axis=1)
    codes = _codes(g, tokens, pad)
    padding = _is(g, codes, 2)
    end = g.node("And", [padding, g.node("Not", [g.shifted(padding, rows, 1)])])  # the first pad
    space = g.node("Or", [_is(g, codes, 1), end])
    removed = g.node(
        "Or",
        [g.node("And", [padding, g.node("Not", [end])]), g.node("And", [space, g.shifted(space, rows, 1)])],
    )
    tokens = g.node("Where", [space, g.const(np.array(" ", dtype=object)), tokens])
    stream = _compact(g, tokens, removed, pad)
    codes = _codes(g, stream, pad)
    letter = _is(g, codes, 0)
    starts = g.node("And", [letter, g.shifted(_is(g, codes, 1), rows, 1)])
    words = g.node(
        "ReduceSum", [g.cast(starts, TensorProto.FLOAT), g.const(np.array([1], np.int64))], keepdims=1
    )
    return stream, words
