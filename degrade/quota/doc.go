// Package quota limits each consumer's requests and tokens per minute with
// token buckets.
//
// A bucket holds up to a minute's quota and refills continuously, so a
// consumer can burst its whole minute and then proceeds at its rate. A
// request reserves one request and an estimate of its tokens before it is
// forwarded (Quotas.Reserve) and settles with its real usage afterwards
// (Reservation.Commit), so quotas hold for streams whose length is known
// only at their end.
//
// With tokens per minute 1,000, an estimate of 310 (10 prompt + 300
// max_tokens) and replies of 300 tokens, three requests leave about 100
// tokens and the fourth in the minute is refused with Retry-After of about
// 13 s.
//
// Store is the interface a shared (Redis) store implements; Memory is the
// in-process default. The package keeps no global state.
package quota
