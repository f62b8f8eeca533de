"""Domain models, one module per concern; import them from here (`analysis.models`)."""

from analysis.models.accounts import Account, Invitation
from analysis.models.analyses import Analysis, AnalysisChunk
from analysis.models.audit import AuditEvent
from analysis.models.cases import BreakGlass, Case, Membership
from analysis.models.llm import LanguageModel, default_sampler
from analysis.models.media import MediaAsset, MediaUpload
from analysis.models.retention import (
    DeletionRequest,
    LegalHold,
    PurgeRecord,
    PurgeRun,
    RetentionPolicy,
)
from analysis.models.review import AnswerMark, ReviewNote
from analysis.models.search import SearchEntry
from analysis.models.templates import Batch, PromptTemplate
from analysis.models.workers import WorkerHeartbeat

__all__ = [
    "Account",
    "Analysis",
    "AnalysisChunk",
    "AnswerMark",
    "AuditEvent",
    "Batch",
    "BreakGlass",
    "Case",
    "DeletionRequest",
    "LegalHold",
    "PurgeRecord",
    "PurgeRun",
    "RetentionPolicy",
    "Invitation",
    "LanguageModel",
    "MediaAsset",
    "MediaUpload",
    "Membership",
    "ReviewNote",
    "SearchEntry",
    "PromptTemplate",
    "WorkerHeartbeat",
    "default_sampler",
]
