"""The n-gram half of the ensemble: logistic regressions on word and character n-grams.

Character n-grams survive typos the encoder's word pieces stumble on; word windows
around a number ("server lr 0.1" vs "lr 0.1") decide its field cheaply. Its
probabilities are averaged with the fine-tuned encoder's.

Saved as plain arrays (safetensors) and a JSON vocabulary, not pickles, so the shipped
model loads without running code from a file.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

import numpy as np
from safetensors.numpy import load_file, save_file
from scipy import sparse
from sklearn.feature_extraction import DictVectorizer
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression

from .featurize import Prepared
from .fields import ENUM_HEADS, INTENT_LABELS, SPAN_LABELS
from .numbers import NumberSpan

_TOKEN = re.compile(r"[a-z]+|[0-9]+|[^\sa-z0-9]")
WORD_PATTERN = r"[a-z]+|[^\sa-z]"  # words, and each other character (numbers are "0")
LEFT_WINDOW = 6
RIGHT_WINDOW = 4


def _sentence_text(prepared: Prepared) -> str:
    """Lower-cased text with every number replaced by a placeholder (values are not n-grams)."""
    text = prepared.text
    out = []
    cursor = 0
    for span in prepared.spans:
        out.append(text[cursor : span.start])
        out.append(" 0 ")
        cursor = span.end
    out.append(text[cursor:])
    return "".join(out).lower()


def _context_tokens(prepared: Prepared) -> tuple[list[str], list[int]]:
    """Word tokens of the text, numbers as "<num>", and the token index of each span."""
    text = prepared.text.lower()
    tokens: list[str] = []
    span_index: list[int] = []
    cursor = 0
    for span in prepared.spans:
        tokens += _TOKEN.findall(text[cursor : span.start])
        span_index.append(len(tokens))
        tokens.append("<num>")
        cursor = span.end
    tokens += _TOKEN.findall(text[cursor:])
    return tokens, span_index


def span_features(prepared: Prepared) -> list[dict[str, float]]:
    tokens, indices = _context_tokens(prepared)
    features = []
    for span, index in zip(prepared.spans, indices, strict=True):
        left = tokens[max(0, index - LEFT_WINDOW) : index]
        right = tokens[index + 1 : index + 1 + RIGHT_WINDOW]
        feats: dict[str, float] = {"bias": 1.0}
        for offset in range(1, 4):
            feats[f"w-{offset}={tokens[index - offset] if index - offset >= 0 else '<s>'}"] = 1.0
        for offset in range(1, 3):
            position = index + offset
            feats[f"w+{offset}={tokens[position] if position < len(tokens) else '</s>'}"] = 1.0
        feats[f"l2={'_'.join(left[-2:])}"] = 1.0
        feats[f"r2={'_'.join(right[:2])}"] = 1.0
        for distance, word in enumerate(reversed(left)):
            feats[f"L:{word}"] = max(feats.get(f"L:{word}", 0.0), 1.0 / (1 + 0.3 * distance))
        for distance, word in enumerate(right):
            feats[f"R:{word}"] = max(feats.get(f"R:{word}", 0.0), 1.0 / (1 + 0.3 * distance))
        feats.update(_number_shape(span))
        features.append(feats)
    return features


def _number_shape(span: NumberSpan) -> dict[str, float]:
    magnitude = math.floor(math.log10(abs(span.value))) if span.value else -9
    shape = {
        f"mag={max(-6, min(4, magnitude))}": 1.0,
        "pct": float(span.percent),
        "frac": float(span.fraction),
        "dec": float(span.decimal),
        "times": float(span.times),
        "word": float(span.word),
        "whole": float(span.is_whole),
        "lt1": float(0 < span.value < 1),
    }
    return {key: value for key, value in shape.items() if value}


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=-1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=-1, keepdims=True)


class NgramModel:
    """One logistic regression per head over TF-IDF n-grams, one over span windows.

    It does not predict the fields a search keeps fixed; the encoder alone does.
    """

    def __init__(self, max_word_features: int = 6000, max_char_features: int = 14000) -> None:
        self.word = TfidfVectorizer(
            ngram_range=(1, 2),
            max_features=max_word_features,
            sublinear_tf=True,
            token_pattern=WORD_PATTERN,
        )
        self.char = TfidfVectorizer(
            analyzer="char_wb", ngram_range=(2, 5), max_features=max_char_features, sublinear_tf=True
        )
        self.spans = DictVectorizer()
        self.weights: dict[str, np.ndarray] = {}

    # -- features
    def sentence_matrix(self, prepared: list[Prepared]) -> sparse.csr_matrix:
        texts = [_sentence_text(item) for item in prepared]
        return sparse.hstack([self.word.transform(texts), self.char.transform(texts)]).tocsr()

    # -- training
    def fit(
        self,
        prepared: list[Prepared],
        heads: dict[str, list[int]],
        span_labels: list[list[int]],
        regularization: float = 4.0,
    ) -> None:
        texts = [_sentence_text(item) for item in prepared]
        self.word.fit(texts)
        self.char.fit(texts)
        matrix = self.sentence_matrix(prepared)
        for head, labels in heads.items():
            classes = len(INTENT_LABELS) if head == "intent" else len(ENUM_HEADS[head])
            self._fit_softmax(head, matrix, np.asarray(labels), classes, regularization)
        rows = [feats for item in prepared for feats in span_features(item)]
        flat_labels = np.asarray([label for labels in span_labels for label in labels])
        span_matrix = self.spans.fit_transform(rows)
        self._fit_softmax("spans", span_matrix, flat_labels, len(SPAN_LABELS), regularization)

    def _fit_softmax(
        self, key: str, matrix: Any, labels: np.ndarray, classes: int, regularization: float
    ) -> None:
        present = np.unique(labels)
        if len(present) == 1:
            coef = np.zeros((classes, matrix.shape[1]), dtype=np.float32)
            intercept = np.full(classes, -20.0, dtype=np.float32)
            intercept[present[0]] = 20.0
        else:
            model = LogisticRegression(C=regularization, max_iter=120, tol=1e-3)
            model.fit(matrix, labels)
            coef = np.zeros((classes, matrix.shape[1]), dtype=np.float32)
            intercept = np.full(classes, -20.0, dtype=np.float32)
            if len(model.classes_) == 2:
                # Binary logistic regression has one weight row: the softmax of (0, w) equals it.
                coef[model.classes_[1]] = model.coef_[0]
                intercept[model.classes_[0]] = 0.0
                intercept[model.classes_[1]] = model.intercept_[0]
            else:
                coef[model.classes_] = model.coef_
                intercept[model.classes_] = model.intercept_
        self.weights[f"{key}.coef"] = coef
        self.weights[f"{key}.intercept"] = intercept

    # -- prediction
    def predict(self, prepared: Prepared) -> dict[str, np.ndarray]:
        matrix = self.sentence_matrix([prepared])
        out: dict[str, np.ndarray] = {}
        for head in ("intent", *ENUM_HEADS):
            out[head] = self._probs(head, matrix)[0]
        if prepared.spans:
            out["spans"] = self._probs("spans", self.spans.transform(span_features(prepared)))
        else:
            out["spans"] = np.zeros((0, len(SPAN_LABELS)), dtype=np.float32)
        return out

    def _probs(self, key: str, matrix: Any) -> np.ndarray:
        logits = matrix @ self.weights[f"{key}.coef"].T.astype(np.float32) + self.weights[f"{key}.intercept"]
        return _softmax(np.asarray(logits))

    # -- storage
    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        vocabulary = {
            "word": sorted(self.word.vocabulary_, key=self.word.vocabulary_.get),
            "char": sorted(self.char.vocabulary_, key=self.char.vocabulary_.get),
            "spans": list(self.spans.feature_names_),
        }
        (directory / "ngram_vocabulary.json").write_text(json.dumps(vocabulary), encoding="utf-8")
        arrays = {key: value.astype(np.float16) for key, value in self.weights.items()}
        arrays["word.idf"] = self.word.idf_.astype(np.float32)
        arrays["char.idf"] = self.char.idf_.astype(np.float32)
        save_file(arrays, str(directory / "ngram.safetensors"))

    @classmethod
    def load(cls, directory: Path) -> NgramModel:
        model = cls()
        vocabulary = json.loads((directory / "ngram_vocabulary.json").read_text(encoding="utf-8"))
        arrays = load_file(str(directory / "ngram.safetensors"))
        model.word = TfidfVectorizer(
            ngram_range=(1, 2),
            sublinear_tf=True,
            token_pattern=WORD_PATTERN,
            vocabulary=vocabulary["word"],
        )
        model.word.idf_ = arrays.pop("word.idf")
        model.char = TfidfVectorizer(
            analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True, vocabulary=vocabulary["char"]
        )
        model.char.idf_ = arrays.pop("char.idf")
        model.spans = DictVectorizer()
        model.spans.feature_names_ = vocabulary["spans"]
        model.spans.vocabulary_ = {name: index for index, name in enumerate(vocabulary["spans"])}
        model.weights = {key: value.astype(np.float32) for key, value in arrays.items()}
        return model
