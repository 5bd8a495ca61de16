"""The suite runs in an empty home of its own (tests/conftest.py): nothing in the user's home
or cache decides whether a test passes."""

import os
import pwd
import subprocess
import sys
from pathlib import Path

import torch
from tests.conftest import USER_STATE_VARIABLES, restored_thread_counts
from threadpoolctl import ThreadpoolController, threadpool_limits


def test_home_and_caches_are_a_new_temporary_directory():
    home = Path(os.environ["HOME"])
    assert home.name.startswith("losskernel-tests-home-")
    assert home != Path(pwd.getpwuid(os.getuid()).pw_dir)  # the user's own home
    for variable in ("XDG_CACHE_HOME", "XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME"):
        assert Path(os.environ[variable]).is_relative_to(home), variable
    assert not set(USER_STATE_VARIABLES) & set(os.environ)
    assert Path(torch.hub.get_dir()).is_relative_to(home)  # pretrained weights: none here


def test_processes_the_tests_start_see_the_same_home():
    code = ("import os, platformdirs, nltk.data; "
            "print(os.path.expanduser('~')); print(platformdirs.user_cache_dir('arviz')); "
            "print(*nltk.data.path, sep='\\n')")
    printed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             check=True).stdout.splitlines()
    home = Path(os.environ["HOME"])
    assert Path(printed[0]) == home
    assert Path(printed[1]).is_relative_to(home)  # where ArviZ keeps its daily stamp
    assert [path for path in printed[2:] if path.startswith("/root") or "/home/" in path] == []


def blas_threads() -> dict[str, int]:
    return {pool.filepath: pool.num_threads for pool in ThreadpoolController().lib_controllers}


def test_thread_counts_a_test_sets_are_put_back_after_it():
    torch_threads, pools = torch.get_num_threads(), blas_threads()
    with restored_thread_counts():
        threadpool_limits(max(pools.values()) + 1)  # as a step run in-process does
        torch.set_num_threads(torch_threads + 1)
        assert torch.get_num_threads() == torch_threads + 1 and blas_threads() != pools
    assert torch.get_num_threads() == torch_threads
    assert blas_threads() == pools
