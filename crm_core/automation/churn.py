"""The churn-risk alert's source: the churn report's risk list (``crm_core.reports.churn``).

The rule engine asks this one function which customers are at risk, so the alert and the
report never disagree. Only customers with at least ``min_score`` reasons are alerted.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ColumnElement
from sqlalchemy.orm import Session

from crm_core.models import Customer

#: How many of the riskiest customers one daily run may alert about.
ALERT_LIMIT = 5000
MIN_SCORE = 2


def churn_risk_ids(
    session: Session, *, now: datetime, min_score: int = MIN_SCORE, limit: int = ALERT_LIMIT
) -> list[int]:
    """Ids of live customers the churn report lists with ``risk_score >= min_score``."""
    from crm_core.reports.churn import churn_risk
    from crm_core.users import get_system_user

    frame = churn_risk(session, actor=get_system_user(session), now=now, limit=limit, locale="en")
    return [int(i) for i in frame.loc[frame["risk_score"] >= min_score, "customer_id"]]


def churn_risk_condition(session: Session, *, now: datetime) -> ColumnElement[bool]:
    """SQL condition on ``Customer``: listed at risk by the churn report."""
    return Customer.id.in_(churn_risk_ids(session, now=now))
