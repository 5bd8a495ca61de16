import shutil

import nltk
import numpy as np
import pandas as pd
import pytest
from nltk.corpus.reader.wordnet import WordNetCorpusReader
from tests.needs import require

from losskernel.tasks import wordnet

DEBIAN = wordnet.DEBIAN_WORDNET_DIR
TENCH, GOLDFISH, GOLDEN_RETRIEVER, RACER = 0, 1, 207, 751


@pytest.fixture(scope="module")
def offline(tmp_path_factory):
    """One reader built from Debian's files in a fresh nltk_data, with no other nltk data seen."""
    require("wordnet")
    nltk_data = tmp_path_factory.mktemp("nltk_data")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(nltk.data, "path", [])  # ignore any nltk corpus of this machine
        reader, description = wordnet.load_wordnet(nltk_data)
        yield nltk_data, reader, description


@pytest.fixture(scope="module")
def table(offline):
    return wordnet.hierarchy_table(offline[1], wordnet.imagenet1k_classes())


def test_lexnames_is_the_45_line_table():
    lines = [line.split("\t") for line in wordnet.LEXNAMES.splitlines()]
    assert [int(number) for number, _, _ in lines] == list(range(45))
    assert lines[5] == ["05", "noun.animal", "1"] and lines[44] == ["44", "adj.ppl", "3"]
    kinds = {"noun": "1", "verb": "2", "adj": "3", "adv": "4"}
    assert all(kinds[name.split(".")[0]] == category for _, name, category in lines)
    counts = pd.Series([name.split(".")[0] for _, name, _ in lines]).value_counts().to_dict()
    assert counts == {"noun": 26, "verb": 15, "adj": 3, "adv": 1}


def test_offline_corpus_loads_with_the_stock_reader(offline):
    nltk_data, reader, description = offline
    corpus = nltk_data / "corpora" / "wordnet"
    assert isinstance(reader, WordNetCorpusReader)
    assert description == f"WordNet 3.0, Debian wordnet-base copied into {corpus}"
    assert not any(path.is_symlink() for path in corpus.iterdir())
    assert (corpus / "lexnames").read_text() == wordnet.LEXNAMES
    tench = wordnet.synset_of(reader, "n01440764")
    path = wordnet.chosen_path(tench)
    assert (path[0], path[-1], len(path)) == ("entity.n.01", "tench.n.01", 17)
    assert tench.lexname() == "noun.animal"
    dog = reader.synset("dog.n.01")
    assert {hypernym.name() for hypernym in dog.hypernyms()} == {
        "canine.n.02", "domestic_animal.n.01"}
    assert wordnet.chosen_path(dog)[-3:] == ["carnivore.n.01", "canine.n.02", "dog.n.01"]
    assert reader.lemma_from_key("dog%1:05:00::").synset() == dog  # index.sense is in place


def test_build_is_idempotent_and_survives_without_debian(tmp_path):
    require("wordnet")
    corpus = wordnet.build_offline_corpus(tmp_path)
    assert (corpus / "index.sense").stat().st_size == (DEBIAN / "index.sense").stat().st_size
    assert (corpus / "cntlist").is_file() and (corpus / "noun.exc").is_file()
    stamps = {path.name: path.stat().st_mtime_ns for path in corpus.iterdir()}
    assert wordnet.build_offline_corpus(tmp_path, debian_dir=tmp_path / "gone") == corpus
    assert {path.name: path.stat().st_mtime_ns for path in corpus.iterdir()} == stamps


def test_missing_debian_files_name_both_fixes(tmp_path):
    with pytest.raises(FileNotFoundError) as missing:
        wordnet.build_offline_corpus(tmp_path / "nltk_data", debian_dir=tmp_path / "empty")
    message = str(missing.value)
    assert "apt-get install wordnet-base wordnet-sense-index" in message
    assert "nltk.download('wordnet')" in message
    assert not (tmp_path / "nltk_data").exists()


def test_missing_sense_index_is_named(tmp_path):
    """wordnet-base without wordnet-sense-index: only index.sense is reported missing."""
    debian = tmp_path / "debian"
    debian.mkdir()
    for name in wordnet._REQUIRED_FILES:
        (debian / name).touch()
    (debian / "index.sense").unlink()
    with pytest.raises(FileNotFoundError, match=r"missing from .*debian: index\.sense\. "):
        wordnet.build_offline_corpus(tmp_path / "nltk_data", debian_dir=debian)


def test_no_corpus_and_no_directory_to_build_one(monkeypatch):
    monkeypatch.setattr(nltk.data, "path", [])
    with pytest.raises(LookupError, match="pass nltk_data"):
        wordnet.load_wordnet(None)


def test_standard_nltk_corpus_is_preferred(offline, tmp_path, monkeypatch):
    # A standard nltk_data tree: the files of the offline build without our marker (copies:
    # nltk refuses hard links as well as symlinks).
    corpus = tmp_path / "standard" / "corpora" / "wordnet"
    corpus.mkdir(parents=True)
    for source in (offline[0] / "corpora" / "wordnet").iterdir():
        if source.name != wordnet._MARKER:
            shutil.copyfile(source, corpus / source.name)
    monkeypatch.setattr(nltk.data, "path", [str(tmp_path / "standard")])
    project_cache = tmp_path / "project_nltk_data"
    reader, description = wordnet.load_wordnet(project_cache, debian_dir=tmp_path / "no_debian")
    assert description == f"WordNet 3.0, nltk corpus at {corpus}"
    assert not project_cache.exists()  # nothing was built
    assert wordnet.synset_of(reader, "n02099601").name() == "golden_retriever.n.01"


def test_imagenet_classes():
    classes = wordnet.imagenet1k_classes()
    assert list(classes.columns) == ["label", "wnid", "name"]
    assert classes["label"].tolist() == list(range(1000))
    assert classes["wnid"].is_unique
    assert classes.loc[TENCH, ["wnid", "name"]].tolist() == ["n01440764", "tench"]
    assert classes.loc[GOLDEN_RETRIEVER, "name"] == "golden retriever"


def test_synset_of_rejects_malformed_and_unknown_wnids(offline):
    reader = offline[1]
    for malformed in ("n0144076", "x01440764", "01440764", "n014407640"):
        with pytest.raises(ValueError, match="'n' followed by 8 digits"):
            wordnet.synset_of(reader, malformed)
    for unknown in ("n01440765", "n99999999"):  # mid-line, past the end of data.noun
        with pytest.raises(LookupError, match="no noun synset"):
            wordnet.synset_of(reader, unknown)


def test_all_imagenet_classes_resolve_into_one_tree(table):
    assert len(table) == 1000
    assert list(table.columns) == ["label", "wnid", "name", "synset", "lexname", "wordnet_path",
                                   "depth", "hierarchy_position", "inset_group"]
    assert table.loc[TENCH, "synset"] == "tench.n.01"
    assert table.loc[GOLDEN_RETRIEVER, "synset"] == "golden_retriever.n.01"
    paths = table["wordnet_path"].str.split(">")
    assert (paths.str[0] == "entity.n.01").all()
    assert (paths.str[-1] == table["synset"]).all()
    assert (table["depth"] == paths.str.len() - 1).all()
    assert table["lexname"].str.startswith("noun.").all()


def test_hierarchy_positions_follow_a_depth_first_traversal(table):
    position = table["hierarchy_position"]
    assert position.is_unique and position.min() == 0.0 and position.max() == 1.0
    # Walk the prefix tree of the paths depth-first, children in name order.
    tree: dict = {}
    for row, path in enumerate(table["wordnet_path"].str.split(">")):
        node = tree
        for name in path:
            node = node.setdefault(name, {})
        node[None] = row  # the class ends here; None sorts apart from the names
    visited: list[int] = []

    def walk(node: dict) -> None:
        if None in node:
            visited.append(node[None])
        for name in sorted(key for key in node if key is not None):
            walk(node[name])

    walk(tree)
    np.testing.assert_array_equal(np.argsort(position.to_numpy()), visited)


def test_hierarchy_positions_by_hand(offline):
    # racer (artifact) < goldfish < tench (both cyprinids: name order) < golden retriever
    # (mammal; aquatic_vertebrate.n.01 < mammal.n.01 under vertebrate.n.01).
    classes = wordnet.imagenet1k_classes().loc[[TENCH, GOLDFISH, GOLDEN_RETRIEVER, RACER]]
    small = wordnet.hierarchy_table(offline[1], classes)
    assert small["hierarchy_position"].tolist() == [2 / 3, 1 / 3, 1.0, 0.0]
    assert small["label"].tolist() == [TENCH, GOLDFISH, GOLDEN_RETRIEVER, RACER]
    single = wordnet.hierarchy_table(offline[1], classes.iloc[:1])
    assert single["hierarchy_position"].tolist() == [0.0]
    with pytest.raises(ValueError, match="unique wnids"):
        wordnet.hierarchy_table(offline[1], pd.concat([classes, classes.iloc[:1]]))


def test_racer_takes_the_longer_path_through_vehicle(table):
    # Two hypernym paths: via conveyance > vehicle (longer) and via container.
    assert ">conveyance.n.03>vehicle.n.01>wheeled_vehicle.n.01>" in table.loc[RACER, "wordnet_path"]
    assert table.loc[RACER, "inset_group"] == "vehicles"


def test_inset_groups(offline, table):
    for synset in wordnet.INSET_GROUPS.values():
        offline[1].synset(synset)  # exists in WordNet 3.0
    counts = table["inset_group"].value_counts().to_dict()
    assert counts == {"": 615, "dogs": 118, "vehicles": 72, "birds": 59, "diapsids": 31,
                      "insects": 27, "musical instruments": 26, "primates": 20, "produce": 23,
                      "crustaceans": 9}
    by_label = table.set_index("label")["inset_group"]
    expected = {
        GOLDEN_RETRIEVER: "dogs", 151: "dogs", 268: "dogs",  # Chihuahua, Mexican hairless
        365: "primates", 384: "primates",  # orangutan, indri
        7: "birds", 146: "birds",  # cock, albatross
        38: "diapsids", 49: "diapsids", 52: "diapsids",  # banded gecko, crocodile, thunder snake
        33: "",  # loggerhead: a turtle, an anapsid
        118: "crustaceans", 126: "crustaceans",  # Dungeness crab, isopod
        300: "insects", 326: "insects",  # tiger beetle, lycaenid
        936: "produce", 947: "produce",  # head cabbage, mushroom
        948: "produce",  # Granny Smith: produce through edible fruit, off its chosen path
        402: "musical instruments", 889: "musical instruments",  # acoustic guitar, violin
        817: "vehicles", 779: "vehicles", 466: "vehicles",  # sports car, school bus, bullet train
        TENCH: "",
    }
    assert {label: by_label[label] for label in expected} == expected


def test_imagenet_data_file_is_the_hierarchy_table_with_its_wordnet_in_the_record(
        offline, table, tmp_path, monkeypatch):
    """The ImageNet task's declared data file, made by the pipeline's step: the table of
    ``hierarchy_table`` at its path, the WordNet it was read from in its provenance header."""
    from losskernel.pipeline.io import read_tsv
    from losskernel.pipeline.models import make_data_file
    from losskernel.tasks import imagenet

    opened = []

    def load_offline(nltk_data, debian_dir):  # the module's reader, not a second 5 s load
        opened.append((nltk_data, debian_dir))
        return offline[1], offline[2]

    monkeypatch.setattr(wordnet, "load_wordnet", load_offline)
    (declared,) = imagenet.DATA_FILES
    assert (declared.key, declared.rule, declared.config_keys) == (
        "hierarchy", "wordnet_hierarchy", ("wordnet",))
    settings = {"wordnet": {"nltk_data": str(tmp_path / "nltk"), "debian_dir": str(DEBIAN)}}
    path = tmp_path / "hierarchy.tsv"
    make_data_file({}, {"table": path}, task="imagenet", file="hierarchy", settings=settings,
                   record={"rule": "wordnet_hierarchy"})
    assert opened == [(tmp_path / "nltk", DEBIAN)]
    written = read_tsv(path).fillna({"inset_group": ""})  # "" reads back as NaN (make_data too)
    pd.testing.assert_frame_equal(written, table.reset_index(drop=True), check_dtype=False)
    header = [line for line in path.read_text().splitlines() if line.startswith("# ")]
    assert header == ["# rule: wordnet_hierarchy", f"# wordnet_source: {offline[2]}",
                      "# wordnet_version: 3.0"]
