"""Kiosk test helpers: sessions written straight into a store."""

from __future__ import annotations

from pathlib import Path

from cpgait.kiosk.deployment import Deployment
from cpgait.kiosk.store import FINISHED, NewSession, Store

ROOT = Path(__file__).resolve().parents[2]
DEMO_CLIP = ROOT / ".cache" / "demo.mp4"
CLASSES = ("GMFCS I", "GMFCS II", "GMFCS III", "GMFCS IV")


def new_session(deployment: Deployment, patient: str = "P-0001", note: str = "") -> NewSession:
    return NewSession(
        patient_id=patient,
        note=note,
        camera="0",
        model=str(deployment.model),
        model_sha256=deployment.model_sha256,
        contract_json=deployment.contract.to_json(),
        software_version="test",
        pose=deployment.pose,
        backend=deployment.backend,
    )


def add_finished_session(
    store: Store, deployment: Deployment, patient: str = "P-0001", note: str = "", cadence: float = 110.0
) -> int:
    """A finished session with three windows of walker 1 (two vote GMFCS II) and one of walker 2."""
    store.add_patient(patient)
    sid = store.start_session(new_session(deployment, patient, note))
    probs = [(0.1, 0.7, 0.1, 0.1), (0.2, 0.6, 0.1, 0.1), (0.5, 0.3, 0.1, 0.1), (0.9, 0.05, 0.03, 0.02)]
    for i, (p, subject) in enumerate(zip(probs, (1, 1, 1, 2))):
        store.add_window(
            sid,
            time_s=4.0 + i,
            frame=120 + 30 * i,
            subject=subject,
            probabilities=dict(zip(CLASSES, p)),
            valid_fraction=0.9,
            features={"cadence": cadence + i, "speed": 0.8, "knee_rom_left": 50.0, "knee_peak_extension_left": None},
            timings_ms={"pose": 20.0},
        )
    quality = {"frames": 200, "tracked": 150, "occluded": 10, "walkers": 2, "direction_changes": 1}
    store.finish_session(sid, FINISHED, {"frames": 200}, quality)
    return sid
