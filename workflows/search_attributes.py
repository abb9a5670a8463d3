"""The custom search attributes cases carry in Temporal: what supervisors can filter on in the Temporal UI.

None of them holds personal data: a status, agency codes, a deadline and whether it has passed.
"""

from __future__ import annotations

from temporalio.common import SearchAttributeKey

STATUS = SearchAttributeKey.for_keyword("RongtukStatus")
AGENCY = SearchAttributeKey.for_keyword_list("RongtukAgency")
DUE_AT = SearchAttributeKey.for_datetime("RongtukDueAt")
OVERDUE = SearchAttributeKey.for_bool("RongtukOverdue")

ALL = (STATUS, AGENCY, DUE_AT, OVERDUE)
# As the dev server's --search-attribute flags want them.
CLI_TYPES = {STATUS.name: "Keyword", AGENCY.name: "KeywordList", DUE_AT.name: "Datetime", OVERDUE.name: "Bool"}
