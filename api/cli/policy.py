"""``kyso policy …``: check a policy file before putting it in force, see the one in force, explain a decision."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from policies.documents import DOCUMENTS_FILE, load

from . import common
from .common import JsonOpt, out, print_json

app = typer.Typer(help="The signing policy: document types, who may sign them, jurisdiction. The server "
                       "picks up an edited file (KYSO_POLICY_FILE) within seconds; a bad file is refused "
                       "and the policy in force stays.", no_args_is_help=True)


@app.command("check")
def check(file: Annotated[Path | None, typer.Argument(help="Policy file (default: KYSO_POLICY_FILE or the "
                                                               "bundled one)")] = None,
          as_json: JsonOpt = False) -> None:
    """Validate a policy file without loading it anywhere: prints its version, or the line and reason it is refused.

    Exit status 0 when valid, 2 when not. Example: kyso policy check /etc/kyso/policy.yaml
    """
    from core.settings import load_settings

    path = file or load_settings().policy_file or DOCUMENTS_FILE
    policy = load(path)  # PolicyInvalid → exit 2 with the line and reason
    summary = {"file": str(path), "version": policy.version, "document_types": sorted(policy.types),
               "independent_reception_provinces": list(policy.jurisdiction.independent_reception_provinces)}
    if as_json:
        print_json(summary)
    else:
        out.print(f"[green]valid[/] {path}: version {policy.version}, {len(policy.types)} document types; "
                  f"province-wide reception in: {', '.join(summary['independent_reception_provinces']) or 'none'}")


@app.command("decide")
def explain(credential: Annotated[str, typer.Option("--credential", "-c", help="The signer's credential id")],
            document_type: Annotated[str, typer.Option("--type", help="Document type, e.g. construction-permit")],
            commune: Annotated[str, typer.Option(help="Commune the document is issued for")],
            step: Annotated[int, typer.Option(help="Signatures already on the document (approval chain)")] = 0,
            as_json: JsonOpt = False) -> None:
    """Would the policy in force let this credential sign this document type for this commune? Says which rule decides."""  # noqa: E501 - one line: --help keeps a docstring's line breaks
    container = common.container()
    decision = container.signing.explain(credential, document_type, commune, step)
    data = {"allowed": decision.allowed, "rule": decision.rule, "reason": decision.reason,
            "signer_rule": decision.signer_rule, "reception": decision.reception,
            "policy_version": container.signing.policy.version}
    if as_json:
        print_json(data)
    else:
        verdict = "[green]allowed" if decision.allowed else "[red]refused"
        out.print(f"{verdict}[/] by {decision.rule}: {decision.reason}")
    if not decision.allowed:
        raise typer.Exit(1)
