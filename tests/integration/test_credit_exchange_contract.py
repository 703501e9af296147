"""The credit platform adapter held to ``sources/credit-publication/README.md`` (b) in the cases the
samples do not show, against the fake credit platform over real HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from adapters.base import OutboundRecord
from adapters.credit_exchange import CreditExchangeAdapter, CreditExchangeConfig
from adapters.credit_exchange.fields import FieldError, render_fields
from adapters.journal import MemoryJournal
from tests.peers.credit_platform_server import API_KEY, PATH, CreditPlatformServer
from tests.unit.test_credit_exchange_message import licence, tonglu_penalty

pytestmark = pytest.mark.integration


def adapter_for(server: CreditPlatformServer) -> CreditExchangeAdapter:
    return CreditExchangeAdapter(CreditExchangeConfig(url=server.url + PATH, api_key=API_KEY))  # type: ignore[arg-type]


def penalty(record_id: str, attempts: int = 1, **changes: object) -> OutboundRecord:
    return OutboundRecord(record_id, "credit_penalty", tonglu_penalty(record_id=record_id, **changes),
                          attempts=attempts)


@pytest.fixture
async def fake() -> AsyncIterator[CreditPlatformServer]:
    async with CreditPlatformServer() as server:
        yield server


@pytest.mark.parametrize("text", ["经查\x0b当事人", "当事人\x00", "备注\x1b", "a\ufffeb", "a\ud800b"])
def test_a_character_xml_cannot_carry_is_a_format_error_of_its_element(text: str) -> None:
    # The message is XML 1.0 (the XSD): a control character (a vertical tab pasted from Word, say)
    # cannot be written at all, so the record is held back as 1002 on the element that has it.
    with pytest.raises(FieldError) as caught:
        render_fields("credit_penalty", tonglu_penalty(illegal_facts=text))
    assert (caught.value.code, caught.value.element) == ("1002", "CF_SY")
    with pytest.raises(FieldError) as caught:
        render_fields("credit_license", licence(remark=text))
    assert (caught.value.code, caught.value.element) == ("1002", "BZ")


def test_text_xml_carries_is_sent_as_it_is() -> None:
    fields = dict(render_fields("credit_penalty", tonglu_penalty(illegal_facts="经查，\t当事人\r\n销售😀")))
    assert fields["CF_SY"] == "经查，\t当事人\r\n销售😀"


async def test_a_record_xml_cannot_carry_is_rejected_alone_and_the_others_published(
        fake: CreditPlatformServer) -> None:
    adapter = adapter_for(fake)
    try:
        results = await adapter.deliver([penalty("cp-1"), penalty("ctl", illegal_facts="经查\x0b当事人")])
    finally:
        await adapter.close()
    assert [(r.status, r.code) for r in results] == [("delivered", "0000"), ("rejected", "1002")]
    assert "CF_SY" in (results[1].message or "")
    assert [r.local_ids for r in fake.received] == [("cp-1",)]


async def test_a_record_retried_in_another_grouping_is_resent_under_its_first_sn(fake: CreditPlatformServer) -> None:
    # README (b): "A resent sn returns the stored response of the first". A record whose answer was
    # lost comes back with other records (or alone): it must go again under the sn it went with,
    # else the platform takes it as a second submission (1006 for an I, 1007 for a D).
    fake.lose_answers(1)
    adapter = adapter_for(fake)
    try:
        first = await adapter.deliver([penalty("cp-1"), penalty("cp-2", operation="u")])
        second = await adapter.deliver([penalty("cp-1", attempts=2), penalty("cp-3")])
        third = await adapter.deliver([penalty("cp-2", attempts=2, operation="u")])
    finally:
        await adapter.close()
    assert {r.status for r in first} == {"retry"}
    assert [(r.record_id, r.status) for r in second] == [("cp-1", "delivered"), ("cp-3", "delivered")]
    assert [(r.record_id, r.status) for r in third] == [("cp-2", "delivered")]
    assert fake.stored == {"cp-1": 1, "cp-2": 1, "cp-3": 1}
    first_sn = fake.received[0].sn
    assert [r.sn for r in fake.received if "cp-1" in r.local_ids or "cp-2" in r.local_ids] == [first_sn] * 3


async def test_a_busy_message_goes_again_under_its_sn_whatever_comes_with_it(fake: CreditPlatformServer) -> None:
    fake.busy(1)  # 9003: "transient, retry the same sn"
    adapter = adapter_for(fake)
    try:
        busy = await adapter.deliver([penalty("cp-1"), penalty("cp-2")])
        again = await adapter.deliver([penalty("cp-2", attempts=2), penalty("cp-1", attempts=2), penalty("cp-4")])
    finally:
        await adapter.close()
    assert {r.status for r in busy} == {"retry"}
    assert [(r.record_id, r.status) for r in again] == [("cp-2", "delivered"), ("cp-1", "delivered"),
                                                        ("cp-4", "delivered")]
    assert fake.received[0].result_code == "9003" and fake.received[1].sn == fake.received[0].sn
    assert fake.stored == {"cp-1": 1, "cp-2": 1, "cp-4": 1}


async def test_the_journal_outlives_the_adapter_and_forgets_a_message_once_settled(
        fake: CreditPlatformServer) -> None:
    journal = MemoryJournal()
    fake.lose_answers(1)
    before, after = adapter_for(fake), adapter_for(fake)
    before.use_journal(journal)
    after.use_journal(journal)  # a restarted gateway, given the durable journal by the runtime
    try:
        lost = await before.deliver([penalty("cp-1"), penalty("cp-2")])
        await before.settled()
        assert journal.recall({"cp-1"}), "a message never answered stays journaled"
        again = await after.deliver([penalty("cp-1", attempts=2), penalty("cp-2", attempts=2)])
        await after.settled()
    finally:
        await before.close()
        await after.close()
    assert {r.status for r in lost} == {"retry"} and {r.status for r in again} == {"delivered"}
    assert fake.received[1].sn == fake.received[0].sn and fake.stored == {"cp-1": 1, "cp-2": 1}
    assert journal.recall({"cp-1", "cp-2"}) == []
