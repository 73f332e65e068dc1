"""A small scenario of a type no built-in one covers (a parcel label), as YAML text: the tests of
scenarios sent inline (the Python API, the service, the bad-input corpus) share it."""

from __future__ import annotations


def parcel_yaml(name: str, company: str = "ZEBRA EXAMPLE SENDER LTD") -> str:
    """The scenario named `name`, its one example's sender `company`."""
    return f"""name: {name}
title: Parcel label
language: en
description: a parcel label
fields:
  - name: company
    description: the sender
  - name: total
    type: amount
examples:
  - text: |-
      {company}
      POSTAGE TOTAL 4.20
    answer: {{company: {company}, total: "4.20"}}
"""
