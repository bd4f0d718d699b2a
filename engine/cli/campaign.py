"""``umkm campaign``: the command group for campaign files, and ``campaign validate``.

Other modules add ``plan``, ``preview`` and ``launch`` by importing :data:`campaign`.
"""

from __future__ import annotations

from pathlib import Path

import typer

from engine.campaign.loader import CampaignError, check_files, locate
from engine.campaign.schema import CampaignSpec
from engine.cli.app import console, sub
from engine.cli.business import db_session
from engine.common.i18n import t
from engine.config import get_settings
from engine.social.plan import post_platforms, post_problems

campaign = sub("campaign", "Kampanye dari berkas YAML: validasi, rencana, pratinjau, peluncuran.")


def expand_paths(paths: list[Path]) -> tuple[list[Path], list[CampaignError]]:
    """Folders become their ``*.yaml``/``*.yml`` files; missing paths become errors."""
    files: list[Path] = []
    errors: list[CampaignError] = []
    for path in paths:
        if path.is_dir():
            found = sorted([*path.glob("*.yaml"), *path.glob("*.yml")])
            if not found:
                errors.append(CampaignError(str(path), 1, 1, t("campaign.cli.empty_dir")))
            files += found
        elif path.exists():
            files.append(path)
        else:
            errors.append(CampaignError(str(path), 1, 1, t("campaign.cli.not_found")))
    return files, errors


@campaign.command("validate")
def validate_command(
    files: list[Path] = typer.Argument(..., help="Berkas kampanye (.yaml) atau folder."),
) -> None:
    """Periksa berkas kampanye: skema, aturan per jenis, template dan ekspresi Jinja."""
    paths, missing = expand_paths(files)
    results = _with_media_checks(check_files(paths))
    total = len(missing)
    for error in missing:
        console.print(str(error), markup=False, highlight=False, soft_wrap=True)
    for path, (spec, errors) in results.items():
        for error in errors:
            console.print(str(error), markup=False, highlight=False, soft_wrap=True)
        total += len(errors)
        if spec is not None:
            console.print(_valid_line(path, spec), markup=False, highlight=False,
                          soft_wrap=True)
    bad_files = len(missing) + sum(1 for _spec, errors in results.values() if errors)
    if total:
        console.print(t("campaign.cli.summary_bad", errors=total, bad=bad_files,
                        files=len(results) + len(missing)), style="bold red", highlight=False)
        raise typer.Exit(1)
    console.print(t("campaign.cli.summary_ok", files=len(results)), style="green",
                  highlight=False)


def _with_media_checks(
    results: dict[Path, tuple[CampaignSpec | None, list[CampaignError]]],
) -> dict[Path, tuple[CampaignSpec | None, list[CampaignError]]]:
    """Refuse a post channel whose products have no photo the platform accepts (naming
    them), a TikTok video that cannot be uploaded and a TikTok privacy the configured
    app may not use, each at its line in the file.

    Only this needs the database (the catalog); a file with no post channel is checked
    offline as before.
    """
    wanted = {path: spec for path, (spec, _e) in results.items()
              if spec is not None and post_platforms(spec)}
    if not wanted:
        return results
    settings = get_settings()
    with db_session() as session:
        for path, spec in wanted.items():
            problems = post_problems(session, spec, settings)
            if problems:
                errors = [_located(path, keys, message) for keys, message in problems]
                results[path] = (None, sorted(errors, key=lambda e: (e.line, e.column)))
    return results


def _located(path: Path, keys: tuple[str, ...], message: str) -> CampaignError:
    position = locate(path, keys)
    return CampaignError(str(path), position.line, position.column, message)


def _valid_line(path: Path, spec: CampaignSpec) -> str:
    """The ✓ line names type and id so a reviewer sees what the file *is*."""
    return t("campaign.cli.valid", file=str(path), type=t(f"studio.type.{spec.type}"),
             id=spec.id)
