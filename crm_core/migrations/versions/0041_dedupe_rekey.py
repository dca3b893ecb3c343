"""Re-key every customer for de-duplication after the key builder changed.

The second session changed how names are normalised (a Chinese name keeps its digits and Latin
words), so blocking keys stored before it can differ from the ones the engine builds now. This
revision forgets every customer's key state: the next scan's ``refresh_keys`` re-keys them all
(vectorised, about the time of one de-duplication pass). The old keys stay in
``dedupe_block_keys`` until then, so the single-record check keeps finding candidates meanwhile.

Whenever the key builder changes again, add a revision like this one.

Revision ID: 0041
Revises: 0006
"""

from alembic import op

revision = "0041"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("DELETE FROM dedupe_key_states")


def downgrade() -> None:
    # Nothing to restore: a customer without key state is simply re-keyed by the next scan.
    pass
