"""The words every stage shares: violation statuses, review actions and reject reasons, each with its
one Chinese name. Values are the strings stored in the database and shown in JSON."""

from __future__ import annotations

from enum import StrEnum


class Status(StrEnum):
    PENDING = "pending"
    CONFIRMED = "confirmed"
    REJECTED = "rejected"


class Action(StrEnum):
    CONFIRM = "confirm"
    REJECT = "reject"
    RELABEL = "relabel"
    TRIM = "trim"
    NOTE = "note"
    CORRECT_BOX = "correct_box"  # the analyst redrew the violation's box on its keyframe
    ADD = "add"  # the analyst added a violation the model missed


class Origin(StrEnum):
    """Who found a violation: the model in a run, or an analyst who drew it (a miss of the model)."""

    MODEL = "model"
    ANALYST = "analyst"


class RejectReason(StrEnum):
    FALSE_DETECTION = "false_detection"
    DUPLICATE = "duplicate"
    NOT_A_VIOLATION = "not_a_violation"
    UNCLEAR_FOOTAGE = "unclear_footage"


UNKNOWN_DISTRICT = "未指定"  # shown, counted and filed under this when a source has no district

STATUS_ZH = {Status.PENDING: "待审", Status.CONFIRMED: "已确认", Status.REJECTED: "已驳回"}
ACTION_ZH = {Action.CONFIRM: "确认", Action.REJECT: "驳回", Action.RELABEL: "改类", Action.TRIM: "裁剪",
             Action.NOTE: "备注", Action.CORRECT_BOX: "修正框", Action.ADD: "补录"}
ORIGIN_ZH = {Origin.MODEL: "模型检出", Origin.ANALYST: "人工补录"}
FRAME_COMPLETE_ZH = "本帧已全部标注"  # a sampled frame on which every violation is boxed: the rest is background
REASON_ZH = {RejectReason.FALSE_DETECTION: "误检", RejectReason.DUPLICATE: "重复",
             RejectReason.NOT_A_VIOLATION: "非违规", RejectReason.UNCLEAR_FOOTAGE: "画面不清"}
