"""``kyso log``: the public transparency log of every certificate and signed document.

kyso appends an entry for each certificate issued or revoked and each document registered, withdrawn
or superseded; a sequencer (every second, in `kyso serve`) puts them into a Merkle tree and signs a
checkpoint. Anyone can copy the log (`kyso log export`, or the /log/ URLs) and check it
(`kyso log verify`), and a commune can list everything issued in its name (`kyso log monitor`).
"""
from __future__ import annotations

import contextlib
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from pki.transparency.errors import LogFormatError, LogVerificationError

from . import common
from .common import JsonOpt, actor, err, lazy, out, print_json

if TYPE_CHECKING:
    from pki.transparency import client, cosignature, note, proof, service
else:
    client = lazy("pki.transparency.client")
    note = lazy("pki.transparency.note")
    proof = lazy("pki.transparency.proof")
    service = lazy("pki.transparency.service")
    cosignature = lazy("pki.transparency.cosignature")

app = typer.Typer(help=__doc__, no_args_is_help=True)

KEY_ENV = "KYSO_LOG_KEY"
KeyOpt = Annotated[str | None, typer.Option(
    "--key", envvar=KEY_ENV, show_default=False,
    help="The log's verifier key, name+hash+base64, as the operator publishes it (`kyso log key` prints it). "
         "Required: a check against a key read from the copy itself would prove nothing.")]
UrlOpt = Annotated[str | None, typer.Option("--url", show_default=False,
                                             help="Log prefix URL, e.g. https://kyso.example.vn/log")]
DirOpt = Annotated[Path | None, typer.Option("--dir", show_default=False,
                                             help="A copy on disk (from `kyso log export` or a mirror)")]


@app.command("init")
def log_init(keystore: Annotated[str | None, typer.Option(help="Keystore for the Ed25519 key")] = None,
             as_json: JsonOpt = False) -> None:
    """Create the log and its Ed25519 checkpoint key (done by `kyso ca init`; idempotent)."""
    info = service.init_log(common.container().pki, actor(), keystore=keystore)
    if as_json:
        print_json({"origin": info.origin, "key": info.vkey, "size": info.size, "created": info.created})
        return
    out.print(f"{'created' if info.created else 'already there'}: log {info.origin}, size {info.size}")
    out.print(f"verifier key (publish it): {info.vkey}")


@app.command("key")
def log_key() -> None:
    """Print the verifier key line people pin to check checkpoints (C2SP signed-note format)."""
    out.print(service.log_info(common.container().pki).vkey, highlight=False)


@app.command("sequence")
def log_sequence(as_json: JsonOpt = False) -> None:
    """Sequence every pending entry now and sign a checkpoint (`kyso serve` does this every second)."""
    result = service.sequence_all(common.container().pki)
    if as_json:
        print_json({"appended": result.appended, "size": result.size})
        return
    out.print(f"appended {result.appended} entries; the log now has {result.size}")


@app.command("export")
def log_export(directory: Annotated[Path, typer.Argument(help="Folder to write checkpoint and tile/ into")]) -> None:
    """Write the log as static files (checkpoint, tile/…, tile/entries/…) for any web server or CDN.

    Serve the folder at <base URL>/log/; run it again to bring the copy up to date (only changed files
    are rewritten, the checkpoint last)."""
    from core.db import transaction

    container = common.container()
    from pki.transparency.witness_client import cosigned_checkpoint

    with transaction(container.pki.sessions, read_only=True) as session:
        size = service.export(session, directory)
        # the checkpoint as /log/checkpoint serves it: with the witnesses' cosignatures on it
        served = (directory / "checkpoint").read_text(encoding="utf-8")
        service.write_inside(directory, "checkpoint",
                             cosigned_checkpoint(session, served, container.witnesses.verifiers).encode())
    out.print(f"exported a log of {size} entries to {directory}")


def _fetch(url: str | None, directory: Path | None) -> contextlib.AbstractContextManager[client.Fetch]:
    if (url is None) == (directory is None):
        raise typer.BadParameter("give exactly one of --url or --dir")
    if directory is not None:
        if not directory.is_dir():
            raise typer.BadParameter(f"{directory} is not a folder")
        return contextlib.nullcontext(client.directory_fetch(directory))
    assert url is not None
    return client.http_fetch(url)  # bounded: a hostile mirror can neither hang it nor fill the memory


def _verifier(key: str | None, *, local: bool = False) -> note.NoteVerifier:
    if key:
        return note.NoteVerifier.parse(key)
    if local:  # monitor without --url/--dir reads this kyso's own log: its own key is the one in question
        return service.verifier(common.container().pki)
    raise typer.BadParameter(f"give the log's verifier key with --key (or {KEY_ENV}); on the kyso server "
                             "`kyso log key` prints it, and the operator publishes it")


def _replay(url: str | None, directory: Path | None, key: str | None, state: client.State | None,
            quiet: bool, *, local: bool = False) -> client.Replay:
    source = _fetch(url, directory)
    verifier = _verifier(key, local=local)

    def progress(done: int, total: int) -> None:
        if not quiet and (done == total or done % 65536 == 0):
            err.print(f"checked {done}/{total} entries")

    with source as fetch:
        return client.replay(fetch, verifier, state=state, progress=progress)


@app.command("verify")
def log_verify(url: UrlOpt = None, directory: DirOpt = None, key: KeyOpt = None,
               state: Annotated[Path | None, typer.Option(
                   "--state", help="File remembering the last checkpoint seen; updated when all is well. "
                                   "With it, a fork, a rollback or a rewritten past is detected.")] = None,
               witnesses: Annotated[list[str] | None, typer.Option(
                   "--witness", show_default=False,
                   help="A witness's verifier key (type 0x04) whose cosignature counts; repeat for several")] = None,
               quorum: Annotated[int | None, typer.Option(
                   "--quorum", min=0, show_default=False,
                   help="How many of the --witness keys must have cosigned the checkpoint (default: all)")] = None,
               as_json: JsonOpt = False) -> None:
    """Replay the whole log from its tiles and check every hash, the signature and consistency; with
    --witness, also that at least --quorum of those witnesses cosigned the checkpoint (no split view).

    Exit status 0: the copy is intact and consistent with what --state saw before. 1: it is not,
    and the message says what (a changed, removed or reordered entry; a forked or stale checkpoint).
    """
    previous = client.State.load(state) if state else None
    try:
        result = _replay(url, directory, key, previous, as_json)
        cosigned = cosignature.verify_cosignatures(result.note, witnesses or [], len(witnesses or [])
                                                   if quorum is None else quorum)
    except (LogVerificationError, LogFormatError) as exc:  # a malformed copy is a failed one
        if as_json:
            print_json({"ok": False, "error": exc.message})
        else:
            err.print(f"[bold red]log verification FAILED[/]: {exc.message}")
        raise typer.Exit(1) from None
    if state:
        result.state.save(state)
    cp = result.checkpoint
    if as_json:
        print_json({"ok": True, "origin": cp.origin, "size": cp.size, "root_hash": note.b64(cp.root_hash),
                    "previous_size": previous.size if previous else None,
                    "cosigned_by": [c.witness for c in cosigned]})
        return
    since = f", consistent with size {previous.size} seen before" if previous else ""
    by = f", cosigned by {', '.join(c.witness for c in cosigned)}" if cosigned else ""
    out.print(f"[green]ok[/]: log {cp.origin}, {cp.size} entries, every tile and the signed root recomputed{since}{by}")


@app.command("verify-proof")
def log_verify_proof(
        file: Annotated[Path, typer.Argument(help="A .tlog-proof file (from /log/proof/<document id>)")],
        key: KeyOpt = None,
        document: Annotated[str | None, typer.Option(help="The document id the proof must be about")] = None,
        version: Annotated[int | None, typer.Option(help="The version the proof must be about")] = None,
        checkpoint: Annotated[Path | None, typer.Option(
            help="A signed checkpoint you saw elsewhere (a mirror, a witness): of the same size, it must have the "
                 "same root, or the log forked")] = None,
        as_json: JsonOpt = False) -> None:
    """Check one document's inclusion proof offline: the checkpoint's signature, the entry's inclusion.

    Needs no network and no database when --key is given. Exit status 0: the entry in the proof is in the
    log the key signs; 1: it is not, or the proof is about another document or version."""
    try:
        verifier = _verifier(key)
        parsed = proof.TlogProof.parse(file.read_bytes())
        cp, entry = proof.check_document_proof(
            parsed, verifier, document_id=document, version=version,
            types=proof.DOCUMENT_TYPES)
        if checkpoint is not None:
            other, _ = note.open_checkpoint(checkpoint.read_bytes(), verifier)
            if other.size == cp.size and other.root_hash != cp.root_hash:
                raise LogVerificationError(f"forked log: the proof's checkpoint and {checkpoint} are both of size "
                                           f"{cp.size} with different roots; keep both as evidence")
    except (LogVerificationError, LogFormatError) as exc:
        if as_json:
            print_json({"ok": False, "error": exc.message})
        else:
            err.print(f"[bold red]proof verification FAILED[/]: {exc.message}")
        raise typer.Exit(1) from None
    except OSError as exc:
        raise typer.BadParameter(f"cannot read {exc.filename}: {exc.strerror}") from None
    if as_json:
        print_json({"ok": True, "index": parsed.index, "origin": cp.origin, "tree_size": cp.size,
                    "root_hash": note.b64(cp.root_hash), "entry": entry.as_dict()})
        return
    out.print(f"[green]ok[/]: entry {parsed.index} ({entry.type.value}, document {entry.get('document')}, "
              f"version {entry.get('version')}) is in log {cp.origin} of {cp.size} entries", highlight=False)


@app.command("monitor")
def log_monitor(commune: Annotated[str, typer.Option(help="Commune code, 5 digits")],
                url: UrlOpt = None, directory: DirOpt = None, key: KeyOpt = None, as_json: JsonOpt = False) -> None:
    """List every certificate and document logged for a commune (after verifying the whole log).

    Without --url or --dir, the local kyso's log is exported to a temporary folder and read from there."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        local = url is None and directory is None
        if local:
            from core.db import transaction

            container = common.container()
            with transaction(container.pki.sessions, read_only=True) as session:
                service.export(session, Path(tmp))
            directory = Path(tmp)
        try:
            result = _replay(url, directory, key, None, as_json, local=local)
        except (LogVerificationError, LogFormatError) as exc:
            err.print(f"[bold red]log verification FAILED[/]: {exc.message}")
            raise typer.Exit(1) from None
    rows = [{"index": i, **e.as_dict()} for i, e in result.entries_for_commune(commune)]
    if as_json:
        print_json({"commune": commune, "size": result.checkpoint.size, "entries": rows})
        return
    if not rows:
        out.print(f"nothing logged for commune {commune} in {result.checkpoint.size} entries")
        return
    for row in rows:
        what = row.get("document") or row.get("serial")
        out.print(f"#{row['index']:>7} {row['time']}  {row['type']:<20} {what}", highlight=False)
    out.print(f"{len(rows)} entries for commune {commune} (log size {result.checkpoint.size})")

