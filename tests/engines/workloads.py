"""Many realistic policy inputs for one bundle: every app, every enum value, edge numbers.

Numbers sit on and around the catalog's own thresholds (context sizes, blended prices; the
workload's MAU around the caps, which no longer decides them), which is where two engines'
arithmetic could part.
"""

from __future__ import annotations

import random
from typing import Any

from policy import Bundle, DecisionRequest
from policy.catalog import (
    DangerousCapability,
    DataClassification,
    DeploymentMode,
    QualityTier,
    RegulatoryTier,
    Task,
)
from policy.decision import Caller, build_input

def _thresholds(bundle: Bundle) -> tuple[list[int], list[int], list[float]]:
    caps, contexts, prices = {1000}, {0}, set()
    for model in bundle.catalog.models:
        # The workload's MAU no longer decides a cap (the org's figures do); edge values are
        # still sent, recorded, and must change nothing on either engine.
        cap = model.licence.mau_cap
        if cap is not None:
            caps.add(cap.threshold)
        contexts.add(int(model.context_tokens))
        for d in model.deployments:
            prices.add(round((3 * d.price_in_per_mtok + d.price_out_per_mtok) / 4, 4))
    maus = sorted({v for c in caps for v in (c - 1, c, c + 1, int(c * 0.9), int(c * 0.9) - 1)} | {0, 1_200_000})
    context_edges = sorted({v for c in contexts for v in (c, c + 1)})
    price_edges = sorted({p for q in prices for p in (q, round(q - 0.0001, 4), q * 2) if p > 0})
    return maus, context_edges, price_edges


def random_request(rnd: random.Random, bundle: Bundle, edges: tuple[list[int], list[int], list[float]]) -> DecisionRequest:
    maus, contexts, prices = edges
    modes = [m.value for m in DeploymentMode]
    app = rnd.choice(bundle.catalog.apps)  # the workload is drawn within the app's profile
    return DecisionRequest.model_validate({
        "app_id": app.id,
        "workload": {
            "task": rnd.choice(app.tasks if app.tasks is not None else list(Task)).value,
            "quality_tier": rnd.choice(list(QualityTier)).value,
            "regulatory_tier": rnd.choice(list(RegulatoryTier)).value,
            **_where(rnd, bundle, app),
            "data_classification": rnd.choice(list(DataClassification)).value,
            "dangerous_capability": rnd.choice([DangerousCapability.none.value] * 12 + [c.value for c in DangerousCapability]),
            "commercial": rnd.random() > 0.25,
            "monthly_active_users": rnd.choice(maus),
            "min_context_tokens": rnd.choice(contexts) if rnd.random() < 0.4 else 0,
            "max_price_per_mtok": rnd.choice(prices) if rnd.random() < 0.4 else None,
            "deployment_modes": rnd.sample(modes, rnd.randint(1, 3)),
        },
    })


def _where(rnd: random.Random, bundle: Bundle, app: Any) -> dict[str, Any]:
    """Sector and jurisdictions within the app's profile: left to the profile, one of its own,
    or a member state of one of its groups (which reaches the engines expanded)."""
    groups = bundle.catalog.jurisdictions
    members = sorted({m for g in groups.groups if g in app.jurisdictions for m in groups.members(g)})
    options: list[list[str] | None] = [None, list(app.jurisdictions), *([c] for c in app.jurisdictions)]
    if members:
        options.append(rnd.sample(members, min(2, len(members))))
    out: dict[str, Any] = {}
    if rnd.random() < 0.8:
        out["sector"] = rnd.choice([s.value for s in app.sectors])
    jurisdictions = rnd.choice(options)
    if jurisdictions is not None:
        out["jurisdictions"] = jurisdictions
    return out


def policy_inputs(bundle: Bundle, n: int, *, seed: int = 9) -> list[dict[str, Any]]:
    """``n`` policy inputs as the service builds them (workload + the app's entitlements)."""
    rnd = random.Random(seed)
    edges = _thresholds(bundle)
    caller = Caller(key_id="k_engines", role="app")
    return [build_input(bundle, random_request(rnd, bundle, edges), caller) for _ in range(n)]
