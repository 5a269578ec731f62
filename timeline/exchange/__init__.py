"""Exchange with other systems: FHIR R4 in (and out), and the exports a registry statistician takes away
(CDISC ADaM ADTTE as XPT or Dataset-JSON, Parquet, spreadsheets, a cBioPortal study), optionally
pseudonymised. Exports read only the projection tables, through the read-only views."""
