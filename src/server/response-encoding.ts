import type { LoadResponse, WatchResponse } from "../../gen/sessionstore/v1/session_store.js";

/** A LoadResponse as the server writes it: messages as the bytes storage answered. */
export interface LoadResponseBytes extends Omit<LoadResponse, "messages"> {
  messages: Buffer[];
}

/** A WatchResponse as the server writes it: messages as the bytes storage answered. */
export interface WatchResponseBytes extends Omit<WatchResponse, "messages"> {
  messages: Buffer[];
}

/**
 * Encodes a LoadResponse as the generated encoder would (same fields, same order, defaults
 * left out; `repeated string` and `bytes` are the same encoding), but from the messages' bytes:
 * one allocation, each message copied once, none decoded into a string and encoded back.
 */
export function encodeLoadResponse(response: LoadResponseBytes): Buffer {
  const callIds = response.danglingCallIds.map((id) => Buffer.from(id, "utf8"));
  const encoder = new Encoder(
    uint64Size(response.firstSeq) + bytesFieldsSize(response.messages) + bytesFieldsSize(callIds),
  );
  encoder.uint64(1, response.firstSeq);
  for (const message of response.messages) encoder.bytes(2, message);
  for (const id of callIds) encoder.bytes(3, id);
  return encoder.finish();
}

/** Encodes a WatchResponse as the generated encoder would, from the messages' bytes. */
export function encodeWatchResponse(response: WatchResponseBytes): Buffer {
  const { rewoundTo } = response;
  const encoder = new Encoder(
    uint64Size(response.firstSeq) +
      bytesFieldsSize(response.messages) +
      (rewoundTo === undefined ? 0 : 1 + varintSize(rewoundTo)),
  );
  encoder.uint64(1, response.firstSeq);
  for (const message of response.messages) encoder.bytes(2, message);
  // An optional field is written when set, zero included.
  if (rewoundTo !== undefined) encoder.varintField(3, rewoundTo);
  return encoder.finish();
}

const WIRE_VARINT = 0;
const WIRE_LENGTH_DELIMITED = 2;

/** Bytes of a varint holding `value` (a whole number below 2^53). */
function varintSize(value: number): number {
  let size = 1;
  for (let rest = value; rest >= 0x80; rest = Math.floor(rest / 0x80)) size++;
  return size;
}

/** Bytes of a proto3 uint64 field (fields 1-15: a one-byte tag), nothing for its default 0. */
function uint64Size(value: number): number {
  return value === 0 ? 0 : 1 + varintSize(value);
}

/** Bytes of length-delimited fields (numbered 1-15) holding `values`. */
function bytesFieldsSize(values: readonly Uint8Array[]): number {
  let size = 0;
  for (const value of values) size += 1 + varintSize(value.length) + value.length;
  return size;
}

/** Writes fields numbered 1-15 into a buffer of the size they were counted to need. */
class Encoder {
  private readonly buffer: Buffer;
  private at = 0;

  constructor(size: number) {
    this.buffer = Buffer.allocUnsafe(size);
  }

  /** A proto3 uint64 field: left out when 0. */
  uint64(field: number, value: number): void {
    if (value !== 0) this.varintField(field, value);
  }

  varintField(field: number, value: number): void {
    this.buffer[this.at++] = (field << 3) | WIRE_VARINT;
    this.varint(value);
  }

  bytes(field: number, value: Uint8Array): void {
    this.buffer[this.at++] = (field << 3) | WIRE_LENGTH_DELIMITED;
    this.varint(value.length);
    this.buffer.set(value, this.at);
    this.at += value.length;
  }

  finish(): Buffer {
    if (this.at !== this.buffer.length) {
      throw new Error(`encoded ${this.at} bytes of the ${this.buffer.length} counted`);
    }
    return this.buffer;
  }

  private varint(value: number): void {
    let rest = value;
    while (rest >= 0x80) {
      this.buffer[this.at++] = (rest % 0x80) | 0x80;
      rest = Math.floor(rest / 0x80);
    }
    this.buffer[this.at++] = rest;
  }
}
