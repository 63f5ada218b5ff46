// Package secrets encrypts workspace-supplied (BYOK) provider credentials at
// rest with AES-256-GCM under a master key.
//
// # Master key
//
// The master key is 32 random bytes taken from the PERPETUO_MASTER_KEY
// environment variable, base64 (standard or URL alphabet, padded or not) or
// hex encoded; see [ParseKey]. When the variable is unset, [LoadOrCreate]
// falls back to a development key stored in <dataDir>/master.key (mode 0600,
// created once and reused), and the server should log a warning: a key that
// lives next to the data it protects only guards against leaked database
// dumps, not a stolen disk.
//
// Every key has a short id: the first 8 hex characters of the SHA-256 of the
// key bytes ([Key.ID]). The id reveals nothing useful about the key; it is
// recorded in each ciphertext so that the right key is chosen on decrypt.
//
// # Ciphertext format
//
// [Keyring.Seal] produces, all concatenated:
//
//	offset  size  field
//	0       1     version, currently 1
//	1       4     key id: the raw first 4 bytes of SHA-256(key), i.e. the
//	              8 hex characters of Key.ID decoded
//	5       12    nonce, fresh from crypto/rand for every seal
//	17      n+16  AES-256-GCM ciphertext of the n plaintext bytes, then the tag
//
// The GCM additional data is the 5-byte header (version and key id)
// followed by the caller's aad, so neither the header nor the binding can be
// altered without the open failing. Callers pass something that identifies
// the row the ciphertext belongs to (the credential id, say) as aad: a
// ciphertext copied to another row then fails to open with [ErrCorrupt].
// The same aad must be given to [Keyring.Open], and again when re-sealing
// during rotation.
//
// Random 96-bit nonces are safe for up to about 2^32 seals under one key,
// far more than the number of stored credentials.
//
// # Rotation
//
// A [Keyring] seals under its current key and opens with the current key or
// any older one, so a master key can be replaced without downtime:
//
//  1. Generate a new key ([GenerateKey], printed with [Key.Encode]).
//  2. Restart every server with PERPETUO_MASTER_KEY set to the new key and
//     PERPETUO_MASTER_KEY_OLD set to the previous one (when moving off the
//     development key, the previous one is the content of master.key).
//     Build the ring with NewKeyring(newKey, oldKey). New and updated
//     credentials are now sealed under the new key; existing ones still open.
//  3. Run `perpetuo secrets rotate`: for every stored credential for which
//     [Keyring.NeedsRotation] reports true, Open it and Seal it again with
//     the same aad, and write it back (conditionally on the stored
//     ciphertext being unchanged, so a concurrent update is not lost).
//     Re-running is harmless: rows already under the new key are skipped.
//  4. Once no credential needs rotation, unset PERPETUO_MASTER_KEY_OLD and
//     restart. A ciphertext still under the old key now fails with
//     [ErrUnknownKey], whose message points the operator back to step 2.
//
// Keep the old key until step 4 has been verified: without it, credentials
// still sealed under it are unrecoverable.
package secrets
