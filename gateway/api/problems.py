"""Error answers of the HTTP API: a stable English code and messages in Chinese and English."""

from __future__ import annotations

from fastapi import HTTPException


class ApiProblem(HTTPException):
    def __init__(self, status: int, code: str, message_zh: str, message_en: str,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(status_code=status, detail={"code": code, "message_zh": message_zh, "message_en": message_en},
                         headers=headers)
