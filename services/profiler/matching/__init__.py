"""Pure comparison of (traveller, watchlist entry) pairs: names, dates of birth and document numbers.

One module per kind of evidence (names, dates, documents), how common a name is (rarity), and the pairs that
bring them together (pairs); this package re-exports what the rest of the hub uses.

Screening runs in two stages (reference/name-matching.md §1): watchlist.py finds candidate pairs through
an index, this module scores them. Everything that can be computed on whole columns is (folds, date and
document evidence, a quick rapidfuzz score that discards hopeless pairs); only the token alignment of the
pairs that survive runs in Python, a handful per thousand travellers.

The score of a pair, in [0, 1]. No single piece of evidence vetoes a match: each is graded.

    name   token alignment of both names, order-free (swapped fields cost 3 %, and only when both sides
           have both fields), after merging parts split differently on the two sides (JEAN PIERRE,
           JEANPIERRE; ABDUL RAHMAN, ABDULRAHMAN; LAURENT NKUNDA, LAUREN TNKUNDA). Per token: exact 1.0,
           MRZ-truncated prefix 0.97, an ICAO two-letter form against the plain letter (MUELLER, MULLER)
           0.95, initial 0.8, otherwise the OSA similarity (1 - edits / length; two adjacent letters swapped
           count half an edit), lifted half-way to 1 when the transliteration folds agree and the spellings
           share at least half. Parts of three letters or fewer fail closed except for a letter doubled,
           dropped or swapped (SON, SSON; ALI, AL; SOK, SKO). Agreeing parts weigh their rarity (name_rarity:
           a shared rare part says more than a shared common one, "common" counted on the lists and among
           the region's travellers); an unmatched part costs a fixed weight, 35 % of it when one side only
           has extra or missing parts, all of it when the one missing is the first given name, and when both
           sides have unmatched parts each of the entry's costs at least its own rarity (another name stands
           where the entry has one)
    base   name + date-of-birth adjustment (DOB_ADJUSTMENT: graded by how far apart the dates are, from an
           exact date's +0.08 to dates that agree on nothing, -0.40) - common-name penalty (a name whose
           agreeing parts are common, without date-of-birth or document corroboration: common_name_penalty;
           for a single name single_name_penalty instead, which needs the date to corroborate it)
           - DOCUMENT_DIFFERENT_ADJUSTMENT when both have documents and none agree
    score  1 - (1 - document) * (1 - base): a document number equal as sent (0.97) or after OCR
           normalisation (0.93) is strong evidence on its own, whatever the names say

Explanations say how each part compared and never quote a name, date or number: they travel to members.
"""

from services.profiler.matching.dates import (
    DOB_ADJUSTMENT,
    DOB_TEXT,
    date_parts,
    dob_relation_expr,
    dob_relation_parts,
)
from services.profiler.matching.documents import (
    DOCUMENT_DIFFERENT_ADJUSTMENT,
    DOCUMENT_SCORE,
    DOCUMENT_TEXT,
    document_canonical_expr,
    document_raw_expr,
    document_relation_expr,
)
from services.profiler.matching.names import (
    MRZ_NAME_LENGTHS,
    NameEvidence,
    compare_names,
    fold_expr,
    fold_tokens,
    mrz_truncated,
)
from services.profiler.matching.pairs import (
    MATCHER_VERSION,
    PAIR_COLUMNS,
    QUICK_FLOOR,
    QUICK_MARGIN,
    PairScore,
    Person,
    could_reach,
    date_document_evidence,
    entry_evidence_columns,
    finish_pairs,
    pair_evidence,
    quick_name_score,
    score_pair,
    score_pairs,
    traveller_evidence_columns,
    worth_aligning,
)
from services.profiler.matching.rarity import (
    COMMON_NAME_DECADES,
    COMMON_NAME_PENALTY,
    DOB_CORROBORATION,
    INITIAL_DECADES,
    NAME_COUNT_FLOOR,
    SINGLE_NAME_PENALTY,
    SINGLE_NAME_UNCORROBORATED,
    TRAVELLER_NAMES,
    UNCOUNTED_DECADES,
    NameCounts,
    common_name_penalty,
    corroboration,
    least_common_name_penalty,
    name_rarity,
    single_name_penalty,
    traveller_name_shares,
)

__all__ = [
    "COMMON_NAME_DECADES", "COMMON_NAME_PENALTY", "DOB_ADJUSTMENT", "DOB_CORROBORATION", "DOB_TEXT",
    "DOCUMENT_DIFFERENT_ADJUSTMENT", "DOCUMENT_SCORE", "DOCUMENT_TEXT", "INITIAL_DECADES", "MATCHER_VERSION",
    "MRZ_NAME_LENGTHS", "NAME_COUNT_FLOOR", "PAIR_COLUMNS", "QUICK_FLOOR", "QUICK_MARGIN", "SINGLE_NAME_PENALTY",
    "SINGLE_NAME_UNCORROBORATED", "TRAVELLER_NAMES", "UNCOUNTED_DECADES", "NameCounts", "NameEvidence", "PairScore",
    "Person", "common_name_penalty", "compare_names", "corroboration", "could_reach", "date_document_evidence",
    "date_parts", "dob_relation_expr", "dob_relation_parts", "document_canonical_expr", "document_raw_expr",
    "document_relation_expr", "entry_evidence_columns", "finish_pairs", "fold_expr", "fold_tokens",
    "least_common_name_penalty", "mrz_truncated", "name_rarity", "pair_evidence", "quick_name_score", "score_pair",
    "score_pairs", "single_name_penalty", "traveller_evidence_columns", "traveller_name_shares", "worth_aligning",
]  # fmt: skip
