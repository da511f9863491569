package query

import (
	"encoding/binary"
	"encoding/json"
	"math"
	"strconv"
	"strings"
)

// Key appends to dst the sort key of a JSON value: byte strings that
// compare (bytes.Compare) exactly as Compare compares the values, for
// every JSON value. SQL backends order and filter by it (SQLite computes
// it with a function kintogo registers), so that they agree with the Go
// evaluator by construction.
//
// Layout: a type byte in Compare's type order, then
//   - strings: their bytes, 0x00 escaped as 0x00 0xFF, ended by 0x00 0x01;
//   - numbers: numberKey (exact decimal values);
//   - booleans: 0 or 1;
//   - arrays: the length (8 bytes, big-endian), then each element's key;
//   - objects: the number of members, then for each member in key order
//     the key's string encoding and the value's key.
//
// Every encoding is self-delimiting, so that the keys of arrays and
// objects compare element by element.
func Key(dst []byte, v any) []byte {
	switch x := v.(type) {
	case nil:
		return append(dst, keyNull)
	case string:
		return appendKeyString(append(dst, keyString), x)
	case bool:
		if x {
			return append(dst, keyBool, 1)
		}
		return append(dst, keyBool, 0)
	case json.Number, float64, int64, int:
		return appendNumberKey(append(dst, keyNumber), v)
	case []any:
		dst = binary.BigEndian.AppendUint64(append(dst, keyArray), uint64(len(x)))
		for _, e := range x {
			dst = Key(dst, e)
		}
		return dst
	case map[string]any:
		dst = binary.BigEndian.AppendUint64(append(dst, keyObject), uint64(len(x)))
		for _, k := range sortedKeys(x) {
			dst = Key(appendKeyString(dst, k), x[k])
		}
		return dst
	}
	return append(dst, keyOther)
}

// Type bytes of Key, in typeRank's order.
const (
	keyNull   = 0x10
	keyString = 0x20
	keyNumber = 0x30
	keyBool   = 0x40
	keyArray  = 0x50
	keyObject = 0x60
	keyOther  = 0x70
)

func appendKeyString(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if s[i] == 0 {
			dst = append(dst, 0, 0xFF)
		} else {
			dst = append(dst, s[i])
		}
	}
	return append(dst, 0, 1)
}

// maxExponent bounds the decimal exponents numberKey represents: numbers
// beyond 10^±(2^58) (which no database stores) compare as their bound.
const maxExponent = 1 << 58

// appendNumberKey appends the key of a number's exact decimal value: 0x02
// for zero; for a positive value 0.D × 10^E (D its significant digits,
// without leading or trailing zeros) 0x03, E (8 bytes, sign bit flipped)
// and D's digits, ended by 0x00; for a negative one 0x01 and the
// complement of its magnitude's bytes, so that larger magnitudes sort
// first. A float64 counts as its shortest decimal spelling.
func appendNumberKey(dst []byte, v any) []byte {
	var s string
	switch n := v.(type) {
	case json.Number:
		s = string(n)
	case int64:
		s = strconv.FormatInt(n, 10)
	case int:
		s = strconv.Itoa(n)
	case float64:
		if math.IsInf(n, 0) || math.IsNaN(n) {
			// Not JSON; order them past every finite number of their sign.
			if n < 0 {
				return append(dst, 0x00)
			}
			return append(dst, 0x04)
		}
		s = strconv.FormatFloat(n, 'g', -1, 64)
	}
	neg, digits, exp, ok := parseDecimal(s)
	if !ok {
		return append(dst, 0x02) // unreadable spellings compare as zero
	}
	if len(digits) == 0 {
		return append(dst, 0x02)
	}
	start := len(dst)
	dst = append(dst, 0x03)
	dst = binary.BigEndian.AppendUint64(dst, uint64(exp)^(1<<63))
	dst = append(append(dst, digits...), 0)
	if neg {
		dst[start] = 0x01
		for i := start + 1; i < len(dst); i++ {
			dst[i] = ^dst[i]
		}
	}
	return dst
}

// parseDecimal reads a JSON number as 0.digits × 10^exp, digits without
// leading or trailing zeros (empty for zero). Integers are read without
// allocating.
func parseDecimal(s string) (neg bool, digits string, exp int64, ok bool) {
	i := 0
	if i < len(s) && (s[i] == '-' || s[i] == '+') {
		neg = s[i] == '-'
		i++
	}
	start := i
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	intPart, frac := s[start:i], ""
	if i < len(s) && s[i] == '.' {
		i++
		fs := i
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		frac = s[fs:i]
	}
	if intPart == "" && frac == "" {
		return false, "", 0, false
	}
	var e int64
	if i < len(s) {
		if s[i] != 'e' && s[i] != 'E' {
			return false, "", 0, false
		}
		i++
		eneg := false
		if i < len(s) && (s[i] == '-' || s[i] == '+') {
			eneg = s[i] == '-'
			i++
		}
		if i == len(s) {
			return false, "", 0, false
		}
		for ; i < len(s); i++ {
			c := s[i]
			if c < '0' || c > '9' {
				return false, "", 0, false
			}
			if e <= maxExponent {
				e = e*10 + int64(c-'0') // at most 10 × 2^58 + 9: no overflow
			}
		}
		if eneg {
			e = -e
		}
	}
	intPart = strings.TrimLeft(intPart, "0")
	point := int64(len(intPart)) + e
	if intPart == "" {
		trimmed := strings.TrimLeft(frac, "0")
		point -= int64(len(frac) - len(trimmed))
		frac = trimmed
	}
	if frac = strings.TrimRight(frac, "0"); frac == "" {
		intPart = strings.TrimRight(intPart, "0")
	}
	switch {
	case intPart == "" && frac == "":
		return neg, "", 0, true
	case frac == "":
		digits = intPart
	case intPart == "":
		digits = frac
	default:
		digits = intPart + frac
	}
	return neg, digits, min(max(point, -maxExponent), maxExponent), true
}

// FitsNumeric reports whether a number is within what SQL decimal types
// read without overflow (PostgreSQL's numeric): at most 1,000 significant
// digits and a decimal exponent within ±1,000.
func FitsNumeric(n json.Number) bool {
	_, digits, exp, ok := parseDecimal(string(n))
	return ok && len(digits) <= 1000 && exp >= -1000 && exp <= 1000
}
