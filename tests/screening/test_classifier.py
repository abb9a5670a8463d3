"""The suggester, trained on a fixture set the test writes: what it suggests, why, and similar cases."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest

from config.reference import ReferenceData
from screening.classifier import CategoryModel, prepare
from screening.examples import Example, keyword_examples, split
from screening.training import evaluate
from tests.screening.conftest import fixture_examples


@pytest.mark.parametrize(
    ("text", "category"),
    [
        ("หลุมบนถนนหน้าโรงเรียน รถล้ม", "roads.pothole"),
        ("ไฟส่องสว่างในซอยดับ มืดมาก", "lighting.streetlight"),
        ("ขยะล้นถัง ไม่มีคนมาเก็บ", "waste.cleanliness"),
        ("คาราโอเกะเปิดเสียงดังทั้งคืน", "environment.noise"),
        # Not in the fixture set at all: the categories' keywords carry them.
        ("ถูกเจ้าหนี้นอกระบบทวงหนี้ ข่มขู่ ดอกเบี้ยร้อยละยี่สิบต่อเดือน", "debt.informal"),
        ("แก๊งคอลเซ็นเตอร์หลอกให้โอนเงินเข้าบัญชีม้า", "fraud.online"),
        ("เจ้าหน้าที่เรียกรับสินบนเพื่อออกใบอนุญาต", "corruption.officials"),
    ],
)
def test_suggests_the_category(small_model: CategoryModel, text: str, category: str) -> None:
    guesses = small_model.suggest(prepare(text), k=3)
    assert guesses[0].category == category, [(g.category, round(g.confidence, 2)) for g in guesses]
    assert 0 < guesses[0].confidence <= 1
    assert guesses[0].confidence >= guesses[-1].confidence


def test_explains_with_words_and_keywords(small_model: CategoryModel) -> None:
    guess = small_model.suggest(prepare("ไฟถนนดับทั้งซอย กลางคืนมืดมาก"), k=1)[0]
    assert guess.category == "lighting.streetlight"
    assert any(w in guess.words for w in ("ไฟ", "ดับ", "มืด", "ถนน"))
    debt = small_model.suggest(prepare("กู้เงินนอกระบบ ถูกทวงหนี้ทุกวัน หนี้นอกระบบ"), k=1)[0]
    assert "หนี้นอกระบบ" in debt.keywords


def test_similar_past_cases_with_what_was_decided(small_model: CategoryModel) -> None:
    neighbours = small_model.similar(prepare("รถเก็บขยะไม่มาเก็บขยะหลายวันแล้ว"), k=2)
    assert neighbours[0].ref.startswith("fixture:waste.cleanliness")
    assert neighbours[0].category == "waste.cleanliness" and neighbours[0].similarity > 0.3
    assert "text" not in neighbours[0].as_dict()  # the model keeps references, not complaint text


def test_suggestions_and_similar_cases_are_those_of_the_plain_arithmetic(small_model: CategoryModel) -> None:
    """The fast paths (float32 scores, the search by column) give what scikit-learn and the whole product give."""
    for text in ("รถเก็บขยะไม่มาเก็บขยะหลายวันแล้ว", "ไฟถนนดับทั้งซอย กลางคืนมืดมาก", "หลุมบนถนนหน้าโรงเรียน"):
        prepared = prepare(text)
        features = small_model._features([prepared])
        expected = small_model.classifier.predict_proba(features).ravel()
        assert np.allclose(small_model._probabilities(features), expected / expected.sum(), atol=1e-5)
        assert small_model.matrix is not None
        whole = (small_model.matrix.tocsr() @ features.astype(np.float32).T).toarray().ravel()
        best = [small_model.meta[i][0] for i in np.argsort(-whole, kind="stable")[:3] if whole[i] > 0]
        found = small_model.similar(prepared, k=3)
        assert [n.ref for n in found] == best and found[0].similarity == pytest.approx(whole.max(), abs=1e-6)


def test_a_model_saved_before_the_search_by_column_loads_and_searches(
    small_model: CategoryModel, tmp_path: Path
) -> None:
    path = tmp_path / "model.pickle"
    small_model.save(path)
    older = copy.copy(small_model)
    assert small_model.matrix is not None
    older.matrix = small_model.matrix.tocsr()  # as models were saved before
    older.save(path)
    loaded = CategoryModel.load(path)
    assert loaded is not None and loaded.matrix is not None and loaded.matrix.format == "csc"
    text = prepare("ขยะกองเต็มหน้าปากซอย")
    assert loaded.similar(text) == small_model.similar(text)


def test_accuracy_on_a_held_out_part_of_the_fixture(reference: ReferenceData) -> None:
    examples = fixture_examples()
    train, test = split(examples, test_share=0.3)
    assert test, "the split must hold something out"
    model = CategoryModel.train(train + keyword_examples(reference), reference)
    accuracy = evaluate(model, test, reference)
    assert accuracy.examples == len(test)
    assert accuracy.category_top3 >= accuracy.category_top1 >= 0.5


def test_save_and_load_round_trip(small_model: CategoryModel, tmp_path: Path) -> None:
    path = tmp_path / "screening" / "model.pickle"
    small_model.save(path)
    loaded = CategoryModel.load(path)
    assert loaded is not None
    text = prepare("ขยะกองเต็มหน้าปากซอย")
    assert [g.category for g in loaded.suggest(text)] == [g.category for g in small_model.suggest(text)]
    assert CategoryModel.load(tmp_path / "absent.pickle") is None


def test_split_is_deterministic_and_keeps_keywords_for_training(reference: ReferenceData) -> None:
    examples = fixture_examples() + keyword_examples(reference)
    assert split(examples) == split(list(examples))
    _, test = split(examples, test_share=0.99)
    assert all(e.source != "keywords" for e in test)
    assert Example("x", "roads.pothole").source == "case"
