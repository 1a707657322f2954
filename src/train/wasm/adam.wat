;; The Adam/AdamW update and the gradient reductions, in float32 one operation at a time, in the
;; order of torch 1.13's _single_tensor_adamw and of optim_graph.ts's adamRule (so the two paths
;; agree bit for bit): 4 lanes at a time (SIMD), then the tail one by one.
;;   p ← p·decay + (neg_step·m1) / (√v1 / bc2_sqrt + eps)
;;   m1 = m·β1 + g·(1−β1),  v1 = v·β2 + (g·(1−β2))·g
;; adam (L2 weight decay) first replaces g by g + p·wd. Pointers are byte offsets into memory.
(module
  (import "env" "memory" (memory 1 65536))

  (func (export "adamw") (param $p i32) (param $g i32) (param $m i32) (param $v i32) (param $n i32)
        (param $b1 f32) (param $c1 f32) (param $b2 f32) (param $c2 f32) (param $bc f32) (param $eps f32) (param $ns f32) (param $decay f32)
    (call $adam (local.get $p) (local.get $g) (local.get $m) (local.get $v) (local.get $n)
      (local.get $b1) (local.get $c1) (local.get $b2) (local.get $c2) (local.get $bc) (local.get $eps) (local.get $ns) (local.get $decay)
      (i32.const 0) (f32.const 0)))

  (func (export "adam_l2") (param $p i32) (param $g i32) (param $m i32) (param $v i32) (param $n i32)
        (param $b1 f32) (param $c1 f32) (param $b2 f32) (param $c2 f32) (param $bc f32) (param $eps f32) (param $ns f32) (param $wd f32)
    (call $adam (local.get $p) (local.get $g) (local.get $m) (local.get $v) (local.get $n)
      (local.get $b1) (local.get $c1) (local.get $b2) (local.get $c2) (local.get $bc) (local.get $eps) (local.get $ns) (f32.const 1)
      (i32.const 1) (local.get $wd)))

  (func $adam (param $p i32) (param $g i32) (param $m i32) (param $v i32) (param $n i32)
        (param $b1 f32) (param $c1 f32) (param $b2 f32) (param $c2 f32) (param $bc f32) (param $eps f32) (param $ns f32) (param $decay f32)
        (param $l2 i32) (param $wd f32)
    (local $i i32) (local $end i32) (local $stop i32)
    (local $gv v128) (local $pv v128) (local $m1 v128) (local $v1 v128)
    (local $B1 v128) (local $C1 v128) (local $B2 v128) (local $C2 v128) (local $BC v128) (local $EPS v128) (local $NS v128) (local $D v128) (local $WD v128)
    (local $gs f32) (local $ps f32) (local $ms f32) (local $vs f32)
    (local.set $B1 (f32x4.splat (local.get $b1)))
    (local.set $C1 (f32x4.splat (local.get $c1)))
    (local.set $B2 (f32x4.splat (local.get $b2)))
    (local.set $C2 (f32x4.splat (local.get $c2)))
    (local.set $BC (f32x4.splat (local.get $bc)))
    (local.set $EPS (f32x4.splat (local.get $eps)))
    (local.set $NS (f32x4.splat (local.get $ns)))
    (local.set $D (f32x4.splat (local.get $decay)))
    (local.set $WD (f32x4.splat (local.get $wd)))
    (local.set $end (i32.shl (i32.and (local.get $n) (i32.const -4)) (i32.const 2)))
    (local.set $stop (i32.shl (local.get $n) (i32.const 2)))
    (local.set $i (i32.const 0))
    (block $done
      (loop $l
        (br_if $done (i32.ge_u (local.get $i) (local.get $end)))
        (local.set $pv (v128.load (i32.add (local.get $p) (local.get $i))))
        (local.set $gv (v128.load (i32.add (local.get $g) (local.get $i))))
        (if (local.get $l2)
          (then (local.set $gv (f32x4.add (local.get $gv) (f32x4.mul (local.get $pv) (local.get $WD))))))
        (local.set $m1 (f32x4.add (f32x4.mul (v128.load (i32.add (local.get $m) (local.get $i))) (local.get $B1))
                                  (f32x4.mul (local.get $gv) (local.get $C1))))
        (local.set $v1 (f32x4.add (f32x4.mul (v128.load (i32.add (local.get $v) (local.get $i))) (local.get $B2))
                                  (f32x4.mul (f32x4.mul (local.get $gv) (local.get $C2)) (local.get $gv))))
        (v128.store (i32.add (local.get $p) (local.get $i))
          (f32x4.add (f32x4.mul (local.get $pv) (local.get $D))
                     (f32x4.div (f32x4.mul (local.get $NS) (local.get $m1))
                                (f32x4.add (f32x4.div (f32x4.sqrt (local.get $v1)) (local.get $BC)) (local.get $EPS)))))
        (v128.store (i32.add (local.get $m) (local.get $i)) (local.get $m1))
        (v128.store (i32.add (local.get $v) (local.get $i)) (local.get $v1))
        (local.set $i (i32.add (local.get $i) (i32.const 16)))
        (br $l)))
    (block $tdone
      (loop $t
        (br_if $tdone (i32.ge_u (local.get $i) (local.get $stop)))
        (local.set $ps (f32.load (i32.add (local.get $p) (local.get $i))))
        (local.set $gs (f32.load (i32.add (local.get $g) (local.get $i))))
        (if (local.get $l2)
          (then (local.set $gs (f32.add (local.get $gs) (f32.mul (local.get $ps) (local.get $wd))))))
        (local.set $ms (f32.add (f32.mul (f32.load (i32.add (local.get $m) (local.get $i))) (local.get $b1))
                                (f32.mul (local.get $gs) (local.get $c1))))
        (local.set $vs (f32.add (f32.mul (f32.load (i32.add (local.get $v) (local.get $i))) (local.get $b2))
                                (f32.mul (f32.mul (local.get $gs) (local.get $c2)) (local.get $gs))))
        (f32.store (i32.add (local.get $p) (local.get $i))
          (f32.add (f32.mul (local.get $ps) (local.get $decay))
                   (f32.div (f32.mul (local.get $ns) (local.get $ms))
                            (f32.add (f32.div (f32.sqrt (local.get $vs)) (local.get $bc)) (local.get $eps)))))
        (f32.store (i32.add (local.get $m) (local.get $i)) (local.get $ms))
        (f32.store (i32.add (local.get $v) (local.get $i)) (local.get $vs))
        (local.set $i (i32.add (local.get $i) (i32.const 4)))
        (br $t))))

  ;; Σ x², accumulated in float64 (non-finite iff some x is NaN/Inf, or the sum overflows float64).
  (func (export "sumsq") (param $x i32) (param $n i32) (result f64)
    (local $i i32) (local $end i32) (local $stop i32) (local $a v128) (local $b v128) (local $xv v128) (local $lo v128) (local $hi v128) (local $s f64)
    (local.set $end (i32.shl (i32.and (local.get $n) (i32.const -4)) (i32.const 2)))
    (local.set $stop (i32.shl (local.get $n) (i32.const 2)))
    (local.set $a (f64x2.splat (f64.const 0)))
    (local.set $b (f64x2.splat (f64.const 0)))
    (local.set $i (i32.const 0))
    (block $done
      (loop $l
        (br_if $done (i32.ge_u (local.get $i) (local.get $end)))
        (local.set $xv (v128.load (i32.add (local.get $x) (local.get $i))))
        (local.set $lo (f64x2.promote_low_f32x4 (local.get $xv)))
        (local.set $hi (f64x2.promote_low_f32x4 (i8x16.shuffle 8 9 10 11 12 13 14 15 0 1 2 3 4 5 6 7 (local.get $xv) (local.get $xv))))
        (local.set $a (f64x2.add (local.get $a) (f64x2.mul (local.get $lo) (local.get $lo))))
        (local.set $b (f64x2.add (local.get $b) (f64x2.mul (local.get $hi) (local.get $hi))))
        (local.set $i (i32.add (local.get $i) (i32.const 16)))
        (br $l)))
    (local.set $a (f64x2.add (local.get $a) (local.get $b)))
    (local.set $s (f64.add (f64x2.extract_lane 0 (local.get $a)) (f64x2.extract_lane 1 (local.get $a))))
    (block $tdone
      (loop $t
        (br_if $tdone (i32.ge_u (local.get $i) (local.get $stop)))
        (local.set $s (f64.add (local.get $s) (f64.mul (f64.promote_f32 (f32.load (i32.add (local.get $x) (local.get $i))))
                                                        (f64.promote_f32 (f32.load (i32.add (local.get $x) (local.get $i)))))))
        (local.set $i (i32.add (local.get $i) (i32.const 4)))
        (br $t)))
    (local.get $s))

  ;; x ← x·s (float32), for clipping by global norm.
  (func (export "scale") (param $x i32) (param $n i32) (param $s f32)
    (local $i i32) (local $end i32) (local $stop i32) (local $S v128)
    (local.set $S (f32x4.splat (local.get $s)))
    (local.set $end (i32.shl (i32.and (local.get $n) (i32.const -4)) (i32.const 2)))
    (local.set $stop (i32.shl (local.get $n) (i32.const 2)))
    (local.set $i (i32.const 0))
    (block $done
      (loop $l
        (br_if $done (i32.ge_u (local.get $i) (local.get $end)))
        (v128.store (i32.add (local.get $x) (local.get $i)) (f32x4.mul (v128.load (i32.add (local.get $x) (local.get $i))) (local.get $S)))
        (local.set $i (i32.add (local.get $i) (i32.const 16)))
        (br $l)))
    (block $tdone
      (loop $t
        (br_if $tdone (i32.ge_u (local.get $i) (local.get $stop)))
        (f32.store (i32.add (local.get $x) (local.get $i)) (f32.mul (f32.load (i32.add (local.get $x) (local.get $i))) (local.get $s)))
        (local.set $i (i32.add (local.get $i) (i32.const 4)))
        (br $t))))

  ;; y ← y + x (float32), to sum gradients over chunks.
  (func (export "accumulate") (param $y i32) (param $x i32) (param $n i32)
    (local $i i32) (local $end i32) (local $stop i32)
    (local.set $end (i32.shl (i32.and (local.get $n) (i32.const -4)) (i32.const 2)))
    (local.set $stop (i32.shl (local.get $n) (i32.const 2)))
    (local.set $i (i32.const 0))
    (block $done
      (loop $l
        (br_if $done (i32.ge_u (local.get $i) (local.get $end)))
        (v128.store (i32.add (local.get $y) (local.get $i))
          (f32x4.add (v128.load (i32.add (local.get $y) (local.get $i))) (v128.load (i32.add (local.get $x) (local.get $i)))))
        (local.set $i (i32.add (local.get $i) (i32.const 16)))
        (br $l)))
    (block $tdone
      (loop $t
        (br_if $tdone (i32.ge_u (local.get $i) (local.get $stop)))
        (f32.store (i32.add (local.get $y) (local.get $i))
          (f32.add (f32.load (i32.add (local.get $y) (local.get $i))) (f32.load (i32.add (local.get $x) (local.get $i)))))
        (local.set $i (i32.add (local.get $i) (i32.const 4)))
        (br $t))))
)
