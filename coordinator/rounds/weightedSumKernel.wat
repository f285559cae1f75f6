;; fedmed: the coordinator's weighted-sum kernel (WebAssembly SIMD). Compiled and embedded in
;; weightedSumKernel.ts; a test checks the embedded bytes are this file compiled (wabt).
;; Memory holds one float32 update at $d and the float64 sum at $s (both 16-byte aligned).
(module
  (memory (export "memory") 1)

  ;; Sum of the n float32 values at $d, in float64: NaN or ±Infinity exactly when some value is
  ;; (float32 values cannot overflow a float64 sum).
  (func (export "check") (param $d i32) (param $n i32) (result f64)
    (local $end i32) (local $v v128) (local $acc v128) (local $tail f64)
    (local.set $end (i32.add (local.get $d) (i32.shl (i32.and (local.get $n) (i32.const -4)) (i32.const 2))))
    (block $simd_done
      (loop $simd
        (br_if $simd_done (i32.ge_u (local.get $d) (local.get $end)))
        (local.set $v (v128.load (local.get $d)))
        (local.set $acc (f64x2.add (local.get $acc)
          (f64x2.add (f64x2.promote_low_f32x4 (local.get $v))
                     (f64x2.promote_low_f32x4 (i8x16.shuffle 8 9 10 11 12 13 14 15 0 1 2 3 4 5 6 7 (local.get $v) (local.get $v))))))
        (local.set $d (i32.add (local.get $d) (i32.const 16)))
        (br $simd)))
    (local.set $end (i32.add (local.get $end) (i32.shl (i32.and (local.get $n) (i32.const 3)) (i32.const 2))))
    (block $tail_done
      (loop $scalar
        (br_if $tail_done (i32.ge_u (local.get $d) (local.get $end)))
        (local.set $tail (f64.add (local.get $tail) (f64.promote_f32 (f32.load (local.get $d)))))
        (local.set $d (i32.add (local.get $d) (i32.const 4)))
        (br $scalar)))
    (f64.add (local.get $tail) (f64.add (f64x2.extract_lane 0 (local.get $acc)) (f64x2.extract_lane 1 (local.get $acc)))))

  ;; s[i] += w * d[i] for the n float32 values at $d and the float64 sum at $s.
  (func (export "accumulate") (param $d i32) (param $s i32) (param $n i32) (param $w f64)
    (local $end i32) (local $v v128) (local $wv v128) (local $lo v128) (local $hi v128)
    (local.set $wv (f64x2.splat (local.get $w)))
    (local.set $end (i32.add (local.get $d) (i32.shl (i32.and (local.get $n) (i32.const -4)) (i32.const 2))))
    (block $simd_done
      (loop $simd
        (br_if $simd_done (i32.ge_u (local.get $d) (local.get $end)))
        (local.set $v (v128.load (local.get $d)))
        (local.set $lo (f64x2.promote_low_f32x4 (local.get $v)))
        (local.set $hi (f64x2.promote_low_f32x4 (i8x16.shuffle 8 9 10 11 12 13 14 15 0 1 2 3 4 5 6 7 (local.get $v) (local.get $v))))
        (v128.store (local.get $s) (f64x2.add (v128.load (local.get $s)) (f64x2.mul (local.get $wv) (local.get $lo))))
        (v128.store offset=16 (local.get $s) (f64x2.add (v128.load offset=16 (local.get $s)) (f64x2.mul (local.get $wv) (local.get $hi))))
        (local.set $d (i32.add (local.get $d) (i32.const 16)))
        (local.set $s (i32.add (local.get $s) (i32.const 32)))
        (br $simd)))
    (local.set $end (i32.add (local.get $end) (i32.shl (i32.and (local.get $n) (i32.const 3)) (i32.const 2))))
    (block $tail_done
      (loop $scalar
        (br_if $tail_done (i32.ge_u (local.get $d) (local.get $end)))
        (f64.store (local.get $s) (f64.add (f64.load (local.get $s)) (f64.mul (local.get $w) (f64.promote_f32 (f32.load (local.get $d))))))
        (local.set $d (i32.add (local.get $d) (i32.const 4)))
        (local.set $s (i32.add (local.get $s) (i32.const 8)))
        (br $scalar))))
)
