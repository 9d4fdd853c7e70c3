"""Checks of output paths, made before any work starts, for every command that writes files.

  check_file(flag, path, is_previous_result, force)   one file
  check_folder(flag, folder, files, force)            a folder and the named files a command writes in it
  check_distinct([(flag, path), ...])                  no two outputs are the same file

A file may be written when its folder exists or can be made and takes new files (tried with a
temporary file, which also catches read-only mounts and pseudo-filesystems), when it is not a
folder or a device, and when it does not exist yet or holds a previous result of the same kind;
`force` allows replacing any regular file.
"""
from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

from ..errors import InputError

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
NAME_MAX = 255  # bytes of one file or folder name (Linux, macOS and Windows file systems)


def first_line(path: Path) -> str:
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.readline(1 << 16).strip()
    except (OSError, UnicodeDecodeError):
        return ""


def is_png(path: Path) -> bool:
    try:
        with open(path, "rb") as handle:
            return handle.read(len(PNG_SIGNATURE)) == PNG_SIGNATURE
    except OSError:
        return False


def _nearest_existing(folder: Path) -> Path:
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    return existing


def check_writable_folder(flag: str, folder: Path) -> None:
    """`folder` exists or can be made, and takes new files."""
    existing = _nearest_existing(folder.resolve())
    if not existing.is_dir():
        raise InputError(f"{flag} {folder}: {existing} is not a folder")
    try:
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as err:
        raise InputError(f"{flag} {folder}: cannot create files in {existing} ({err.strerror or err})") from None


def _name_lengths(flag: str, path: Path) -> None:
    """Every part of the path within the file system's limit (checked before anything looks it up)."""
    for part in path.parts:
        if len(os.fsencode(part)) > NAME_MAX:
            raise InputError(f"{flag} {path}: the name '{part[:40]}...' is longer than {NAME_MAX} bytes")


def check_file(flag: str, path: Path | None, is_previous_result: Callable[[Path], bool], force: bool = False) -> None:
    """One output file: its folder usable, and an existing file only if it is a previous result (or `force`)."""
    if path is None:
        return
    _name_lengths(flag, path)
    if path.exists() or path.is_symlink():
        if not path.is_file():
            raise InputError(f"{flag} {path}: is not a regular file (a folder, a device or a broken link); "
                             f"choose a file path")
        if not (force or is_previous_result(path)):
            raise InputError(f"{flag} {path}: exists and is not a previous result of this kind; "
                             f"choose another path, remove the file or pass --force")
    check_writable_folder(flag, path.parent)


def check_folder(flag: str, folder: Path | None, files: dict[str, Callable[[Path], bool]], force: bool = False) -> None:
    """An output folder and the files of `files` (name -> is a previous result) written into it."""
    if folder is None:
        return
    _name_lengths(flag, folder)
    if folder.exists() and not folder.is_dir():
        raise InputError(f"{flag} {folder}: exists and is not a folder")
    for name, is_previous_result in files.items():
        check_file(flag, folder / name, is_previous_result, force)
    check_writable_folder(flag, folder)


def check_distinct(outputs: list[tuple[str, Path]]) -> None:
    """No two (flag, path) entries name the same file."""
    seen: dict[Path, str] = {}
    for flag, path in outputs:
        key = path.resolve()
        if key in seen:
            raise InputError(f"{seen[key]} and {flag} both write {path}; give each output its own path")
        seen[key] = flag
