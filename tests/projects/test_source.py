"""Project sources: folders in place, git repositories in place or at a version, repo#subdir,
and the git provenance recorded for each (real repositories made by the tests)."""

from __future__ import annotations

import pytest

from labtrack.projects.source import resolve, split_subdirectory
from labtrack.projects.spec import ProjectError
from tests.projects.conftest import git


def test_a_plain_folder_runs_in_place_without_git_provenance(demo):
    source = resolve(str(demo))
    assert source.directory == demo.resolve() and source.git is None
    source.close()
    assert demo.is_dir()  # never removed: it is the user's folder


def test_a_folder_in_a_repository_records_commit_branch_url_and_clean_state(repo):
    with resolve(str(repo.root / "demo")) as source:
        assert source.directory == (repo.root / "demo").resolve()
        info = source.git
        assert info.commit == repo.main
        assert info.branch == "main"
        assert info.repo_url == str(repo.root.resolve())  # no remote: the repository path
        assert not info.dirty and info.diff == ""


def test_changes_to_tracked_files_make_it_dirty_untracked_files_do_not(repo):
    (repo.root / "demo" / "notes.txt").write_text("untracked\n")
    (repo.root / "demo" / "__pycache__").mkdir()
    assert not resolve(str(repo.root / "demo")).git.dirty
    with open(repo.root / "demo" / "data" / "train.csv", "a") as data:
        data.write("4,14\n")
    info = resolve(str(repo.root / "demo")).git
    assert info.dirty
    assert "+4,14" in info.diff and "train.csv" in info.diff


def test_the_origin_remote_is_the_repository_url(repo):
    git(repo.root, "remote", "add", "origin", "https://example.com/team/forecast.git")
    assert resolve(str(repo.root / "demo")).git.repo_url == \
        "https://example.com/team/forecast.git"


def test_repo_hash_subdir_names_the_project_folder(repo):
    with resolve(f"{repo.root}#demo") as source:
        assert source.directory == (repo.root / "demo").resolve()
        assert source.git.commit == repo.main
    with pytest.raises(ProjectError, match="No folder 'nowhere'"):
        resolve(f"{repo.root}#nowhere")
    with pytest.raises(ProjectError, match="relative path inside the repository"):
        resolve(f"{repo.root}#../elsewhere")


def test_a_version_checks_out_a_clean_clone_that_is_removed_afterwards(repo):
    # Uncommitted changes in the user's work tree do not leak into a versioned run.
    (repo.root / "demo" / "MLproject").write_text("broken: [")
    source = resolve(f"{repo.root}#demo", version="v1")
    clone = source.directory
    assert clone != (repo.root / "demo").resolve() and clone.is_dir()
    assert source.git.commit == repo.first and source.git.branch is None
    assert not source.git.dirty
    assert source.git.repo_url == str(repo.root.resolve())
    assert "entry_points" in (clone / "MLproject").read_text()
    assert not (clone / "FEATURE").exists()
    source.close()
    assert not clone.exists()


def test_a_branch_version_records_the_branch(repo):
    with resolve(str(repo.root / "demo"), version="feature") as source:
        assert source.git.branch == "feature" and source.git.commit == repo.feature
        assert (source.directory / "FEATURE").is_file()
        assert source.directory.name == "demo"  # path/to/repo/demo means repo#demo
    with resolve(str(repo.root), version=repo.first[:10]) as source:
        assert source.git.commit == repo.first and source.git.branch is None


def test_a_git_url_is_cloned(repo):
    with resolve(f"file://{repo.root}#demo", version="feature") as source:
        assert source.git.commit == repo.feature
        assert (source.directory / "MLproject").is_file()


def test_bad_versions_and_sources_are_explained(repo, demo, tmp_path):
    with pytest.raises(ProjectError, match="Cannot check out version 'nope'"):
        resolve(str(repo.root), version="nope")
    with pytest.raises(ProjectError, match="Invalid version"):
        resolve(str(repo.root), version="--upload-pack=touch")
    with pytest.raises(ProjectError, match="needs a git repository"):
        resolve(str(demo), version="main")
    with pytest.raises(ProjectError, match="No project at"):
        resolve(str(tmp_path / "missing"))


def test_split_subdirectory():
    assert split_subdirectory("repo#a/b/") == ("repo", "a/b")
    assert split_subdirectory("https://h/r.git#sub") == ("https://h/r.git", "sub")
    assert split_subdirectory("repo") == ("repo", "")
