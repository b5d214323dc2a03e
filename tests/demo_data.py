"""Write the federation tier's demo cohorts ahead of it: `python -m tests.demo_data FOLDER`.

scripts/test.sh runs this in the background while the hub, docker and browser tiers run (about
36 s of CPU on 2 cores) and points the tier at FOLDER through DEMO_DATA_ENV; the tier's fixture
then finds every cohort complete (each dataset's marker is written last)."""

import sys

DEMO_DATA_ENV = "WORKBENCH_TEST_DEMO_DATA"


def main(folder: str) -> None:
    from imaging_workbench.dicom import ensure_demo_data

    for spec, _, written in ensure_demo_data(folder, "small"):
        print(f"{spec.id}: {'written' if written else 'already there'}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1])
