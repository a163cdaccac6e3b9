"""Verbatim strings, symbols and typos before the model sees a prompt."""

from intent_llm.featurize import build_corrector
from intent_llm.normalize import damerau_levenshtein, extract_strings, normalize_prompt, normalize_symbols
from intent_llm.training.vocabulary import domain_vocabulary


def test_paths_are_kept_exactly_as_written():
    assert extract_strings("adapt MiniLM to tickets.csv across 7 offices").dataset_path == "tickets.csv"
    assert extract_strings("my data is in /data/heart.csv, train").dataset_path == "/data/heart.csv"
    assert extract_strings("train on ./datasets/Reviews.csv").dataset_path == "./datasets/Reviews.csv"
    assert extract_strings('data="/srv/my data/x.csv"').dataset_path == "/srv/my data/x.csv"
    assert extract_strings("1/5 of clients and/or w/ fedavg").dataset_path is None


def test_windows_paths_are_paths():
    assert (
        extract_strings("on C:/Users/ana/data/sensors.csv, mlp").dataset_path
        == "C:/Users/ana/data/sensors.csv"
    )
    assert extract_strings("use D:\\exports\\orders.csv please").dataset_path == "D:\\exports\\orders.csv"
    assert extract_strings("model hf:org/x.csv").dataset_path is None


def test_hugging_face_ids_and_the_bundled_encoder():
    assert extract_strings("use hf:distilbert-base-uncased on sst2").hf_model == "distilbert-base-uncased"
    assert extract_strings("the hugging face model prajjwal1/bert-tiny").hf_model == "prajjwal1/bert-tiny"
    bundled = extract_strings("fine-tune all-MiniLM-L6-v2 on sst2")
    assert bundled.hf_model is None and bundled.bundled_minilm
    owned = extract_strings("hugging face's huawei-noah/TinyBERT_General_4L_312D as the backbone")
    assert owned.hf_model == "huawei-noah/TinyBERT_General_4L_312D"


def test_a_local_model_directory_is_the_model_not_the_data():
    local = extract_strings(
        "use the local transformers checkpoint at ./models/bert-tiny as the backbone, sst2"
    )
    assert (local.hf_model, local.dataset_path) == ("./models/bert-tiny", None)
    data = extract_strings("point the model at ./exports/complaints.csv")
    assert (data.hf_model, data.dataset_path) == (None, "./exports/complaints.csv")


def test_job_names():
    assert extract_strings("call it 'fmnist prox sweep', fedprox").name == "fmnist prox sweep"
    assert extract_strings("Name it baseline-cnn: mnist").name == "baseline-cnn"
    assert extract_strings("name=run-7 rounds=3").name == "run-7"


def test_symbols_become_words():
    assert normalize_symbols("μ=0.01, η = 3·10⁻⁴").replace(" ", "") == "mu=0.01,eta=3x10^-4"
    assert normalize_symbols("lr 1e−3 – fast") == "lr 1e-3 - fast"


def test_typos_are_corrected_but_real_words_and_strings_are_not():
    corrector = build_corrector(domain_vocabulary())
    text = normalize_prompt(
        "MNSIT with 15 cleints for 40 rouns on fedporx, save to ./cleints.csv", corrector
    ).text
    assert "mnist" in text.lower() and "clients" in text and "rounds" in text and "fedprox" in text
    assert "./cleints.csv" in text
    assert corrector.correct("train a model for my house") == "train a model for my house"


def test_transposition_is_one_edit():
    assert damerau_levenshtein("mnsit", "mnist") == 1
    assert damerau_levenshtein("rouns", "rounds") == 1
