"""Commands exchanging data with other systems: `import fhir`, and `export adtte|parquet|cbioportal|fhir`.

Imports go through the path of `timeline ingest` (all or nothing per file); exports read the projection
tables through the read-only views, as of a clinical date and as known at a moment like every reader.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from .errors import BAD_INPUT, DONE

IMPORT_DESCRIPTION = """\
Import FHIR R4 files: Bundles (.json, any Bundle type), single resources (.json) and bulk-data NDJSON
(.ndjson, one resource a line); a folder is searched for them. Every resource is validated with fhir.resources
and mapped to events by the table of docs/fhir.md (Patient, Condition, Observation, Procedure,
MedicationAdministration, Encounter). The events go through the checks of `timeline ingest`: each file is
stored all or nothing; a resource that does not validate, or an event out of its plausible range, refuses
the file, naming the line (NDJSON) or entry (Bundle), the resource, the field, the value and the rule.

A resource the table does not map is listed (type, id, reason) and counted; --strict refuses a file with any.
Each event's source_record_id is PREFIX:Type/id: importing a changed resource again records a correction.
"""


def cmd_import_fhir(args: argparse.Namespace) -> int:
    from ..app import Timeline
    from ..events.problems import RejectedError
    from ..exchange.fhir_in import fhir_files, import_file
    from .records import _counts, print_refused

    files = fhir_files([Path(p) for p in args.paths])
    if not files:
        print("timeline import fhir: no .json or .ndjson file found", file=sys.stderr)
        return BAD_INPUT
    failed = 0
    with Timeline.open(args.store) as tl:
        for path in files:
            try:
                report, job = import_file(tl, path, prefix=args.prefix, strict=args.strict, dry_run=args.dry_run)
            except RejectedError as e:
                failed += 1
                print_refused(path, e.problems)
                continue
            except (OSError, ValueError) as e:
                failed += 1
                print(f"{path}: REFUSED: {e}", file=sys.stderr)
                continue
            print(f"{path}: {job.resources} resource(s): {_counts(report.new, report.present, report.corrected, args.dry_run)}; "
                  f"{len(job.unmapped)} not mapped")
            for u in job.unmapped:
                print(f"  not mapped: {path.name}:{u}")
    return BAD_INPUT if failed else DONE


def _reader_options(p: argparse.ArgumentParser, store_arg) -> None:
    from .analysis import _reader

    _reader(p, store_arg, formats=False)
    p.add_argument("--pseudonymise", metavar="KEY_FILE",
                   help="replace patient ids by a keyed hash and shift each patient's dates by an offset derived "
                        "from the key (intervals kept); the key file is created (mode 0600) when missing")


def _export(args: argparse.Namespace, write: Any) -> int:
    from ..app import Timeline
    from .analysis import open_view

    with Timeline.open(args.store, create=False) as tl, open_view(tl, args) as view:
        written = write(tl, view)
    for path in written:
        print(path)
    return DONE


def _pseudonymiser(args: argparse.Namespace):
    if not args.pseudonymise:
        return None
    from ..exchange.pseudonym import Pseudonymiser

    return Pseudonymiser.from_key_file(Path(args.pseudonymise))


def cmd_export_adtte(args: argparse.Namespace) -> int:
    from ..exchange.adtte import write_adtte

    return _export(args, lambda tl, view: write_adtte(view, Path(args.out), study_id=args.study_id, fmt=args.format,
                                                      pseudonymiser=_pseudonymiser(args)))


def cmd_export_parquet(args: argparse.Namespace) -> int:
    from ..exchange.parquet import write_parquet
    from ..projections.parameters import resolve

    params = resolve(dict(args.param)) if args.param else None
    return _export(args, lambda tl, view: write_parquet(
        view, Path(args.out), pseudonymiser=_pseudonymiser(args), as_of=args.as_of, known_at=args.known_at,
        params=params, position=tl.store.max_position()))


def cmd_export_cbioportal(args: argparse.Namespace) -> int:
    from ..exchange.cbioportal import write_study

    return _export(args, lambda tl, view: write_study(view, Path(args.out), study_id=args.study_id,
                                                      name=args.name, pseudonymiser=_pseudonymiser(args)))


def cmd_export_fhir(args: argparse.Namespace) -> int:
    from ..exchange.fhir_out import write_ndjson

    return _export(args, lambda tl, view: write_ndjson(view, Path(args.out), pseudonymiser=_pseudonymiser(args)))


def register(sub: Any, store_arg) -> None:
    p = sub.add_parser("import", help="import records from another system (FHIR R4)")
    kinds = p.add_subparsers(dest="kind", required=True, metavar="FORMAT")
    q = kinds.add_parser("fhir", help="FHIR R4 Bundles / NDJSON → events (docs/fhir.md)", description=IMPORT_DESCRIPTION,
                         formatter_class=argparse.RawDescriptionHelpFormatter)
    q.add_argument("paths", nargs="+", metavar="FILE_OR_DIR")
    q.add_argument("--strict", action="store_true", help="refuse a file holding any resource that is not mapped")
    q.add_argument("--dry-run", action="store_true", help="check and count; store nothing")
    q.add_argument("--prefix", default="fhir", help="source_record_id prefix naming the source system (default fhir)")
    store_arg(q)
    q.set_defaults(func=cmd_import_fhir)

    p = sub.add_parser("export", help="export the projections (ADaM ADTTE, Parquet, cBioPortal, FHIR)")
    kinds = p.add_subparsers(dest="kind", required=True, metavar="FORMAT")
    q = kinds.add_parser("adtte", help="CDISC ADaM ADTTE: one record per patient and endpoint")
    q.add_argument("out", metavar="OUT", help="output file (.xpt, .json, .parquet or .csv)")
    q.add_argument("--study-id", default="TIMELINE", help="STUDYID (default TIMELINE)")
    q.add_argument("--format", choices=("xpt", "dataset-json", "parquet", "csv"),
                   help="default: from OUT's extension (xpt when none)")
    _reader_options(q, store_arg)
    q.set_defaults(func=cmd_export_adtte)

    for kind, func, what in (
            ("parquet", cmd_export_parquet, "every projection table and the visible event log as Parquet, with "
             "_manifest.json"),
            ("fhir", cmd_export_fhir, "the visible event log as FHIR R4 bulk-data NDJSON (one file per resource "
             "type), by the table of docs/fhir.md")):
        q = kinds.add_parser(kind, help=what)
        q.add_argument("out", metavar="OUT", help="output folder")
        _reader_options(q, store_arg)
        q.set_defaults(func=func)

    q = kinds.add_parser("cbioportal", help="a cBioPortal study folder: clinical data and timelines")
    q.add_argument("out", metavar="OUT", help="output folder")
    q.add_argument("--study-id", required=True, help="cancer_study_identifier (letters, digits, _ and -)")
    q.add_argument("--name", help="the study's name (default: the study id)")
    _reader_options(q, store_arg)
    q.set_defaults(func=cmd_export_cbioportal)
