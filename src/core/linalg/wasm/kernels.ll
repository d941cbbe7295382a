; Hand-written LLVM IR for NMLab's WebAssembly SIMD linear-algebra kernels.
; Built by ./build.sh (LLVM opt + llc: auto-vectorised to f64x2) into kernels.wasm.ts.
; Each kernel mirrors a JavaScript loop in ../symeig.ts operation for operation; only the
; accumulations marked `reassoc` may be reordered (summed in two lanes).
target datalayout = "e-m:e-p:32:32-i64:64-n32:64-S128"
target triple = "wasm32-unknown-unknown"

; fused2: one row range of symeig.ts fusedPass() for two adjacent columns a0, a1.
; For r in [0, len):
;   a0[r] = a0[r] - v[r]*w0 - w[r]*v0;  a1[r] = a1[r] - v[r]*w1 - w[r]*v1
;   acc0 += a0[r]*u[r];  acc1 += a1[r]*u[r];  p[r] += a0[r]*u0 + a1[r]*u1
; Stores acc0, acc1 in out[0], out[1].
define void @fused2(double* noalias %a0, double* noalias %a1, double* noalias %v, double* noalias %w, double* noalias %u, double* noalias %p, i32 %len, double %w0, double %v0, double %w1, double %v1, double %u0, double %u1, double* noalias %out) #0 {
entry:
  %has = icmp sgt i32 %len, 0
  br i1 %has, label %loop, label %done
loop:
  %r = phi i32 [0, %entry], [%rn, %loop]
  %acc0 = phi double [0.0, %entry], [%acc0n, %loop]
  %acc1 = phi double [0.0, %entry], [%acc1n, %loop]
  %pa0 = getelementptr inbounds double, double* %a0, i32 %r
  %pa1 = getelementptr inbounds double, double* %a1, i32 %r
  %pv = getelementptr inbounds double, double* %v, i32 %r
  %pw = getelementptr inbounds double, double* %w, i32 %r
  %pu = getelementptr inbounds double, double* %u, i32 %r
  %pp = getelementptr inbounds double, double* %p, i32 %r
  %x0 = load double, double* %pa0, align 8
  %x1 = load double, double* %pa1, align 8
  %vr = load double, double* %pv, align 8
  %wr = load double, double* %pw, align 8
  %ur = load double, double* %pu, align 8
  %pr = load double, double* %pp, align 8
  %t00 = fmul double %vr, %w0
  %t01 = fsub double %x0, %t00
  %t02 = fmul double %wr, %v0
  %n0 = fsub double %t01, %t02
  %t10 = fmul double %vr, %w1
  %t11 = fsub double %x1, %t10
  %t12 = fmul double %wr, %v1
  %n1 = fsub double %t11, %t12
  store double %n0, double* %pa0, align 8
  store double %n1, double* %pa1, align 8
  %m0 = fmul double %n0, %ur
  %acc0n = fadd reassoc double %acc0, %m0
  %m1 = fmul double %n1, %ur
  %acc1n = fadd reassoc double %acc1, %m1
  %q0 = fmul double %n0, %u0
  %q1 = fmul double %n1, %u1
  %q = fadd double %q0, %q1
  %pn = fadd double %pr, %q
  store double %pn, double* %pp, align 8
  %rn = add nuw nsw i32 %r, 1
  %c = icmp slt i32 %rn, %len
  br i1 %c, label %loop, label %done
done:
  %f0 = phi double [0.0, %entry], [%acc0n, %loop]
  %f1 = phi double [0.0, %entry], [%acc1n, %loop]
  store double %f0, double* %out, align 8
  %o1 = getelementptr inbounds double, double* %out, i32 1
  store double %f1, double* %o1, align 8
  ret void
}

; rot: one plane rotation of symeig.ts tql() applied to two columns x (i) and y (i+1):
; for k in [0, len): h = y[k]; t = x[k]; y[k] = s*t + c*h; x[k] = c*t - s*h
define void @rot(double* noalias %x, double* noalias %y, i32 %len, double %c, double %s) #1 {
entry:
  %has = icmp sgt i32 %len, 0
  br i1 %has, label %loop, label %done
loop:
  %k = phi i32 [0, %entry], [%kn, %loop]
  %px = getelementptr inbounds double, double* %x, i32 %k
  %py = getelementptr inbounds double, double* %y, i32 %k
  %h = load double, double* %py, align 8
  %t = load double, double* %px, align 8
  %st = fmul double %s, %t
  %ch = fmul double %c, %h
  %ny = fadd double %st, %ch
  %ct = fmul double %c, %t
  %sh = fmul double %s, %h
  %nx = fsub double %ct, %sh
  store double %ny, double* %py, align 8
  store double %nx, double* %px, align 8
  %kn = add nuw nsw i32 %k, 1
  %cond = icmp slt i32 %kn, %len
  br i1 %cond, label %loop, label %done
done:
  ret void
}

; adamw: one AdamW update over n float32 elements, as ../../tuning/adamw.ts adamwUpdate() does it
; (same formula and order; float32 arithmetic as PyTorch's, where the JS loop rounds float64):
;   m = β1·m + c1·g;  v = β2·v + c2·g·g;  p = p·decay − step·m / (√v·invSbc2 + eps)
; Element-wise, no reduction: opt vectorises it to f32x4 (sqrt and div included).
define void @adamw(float* noalias %p, float* noalias %g, float* noalias %m, float* noalias %v, i32 %n, float %beta1, float %c1, float %beta2, float %c2, float %decay, float %step, float %invSbc2, float %eps) #2 {
entry:
  %has = icmp sgt i32 %n, 0
  br i1 %has, label %loop, label %done
loop:
  %i = phi i32 [0, %entry], [%in, %loop]
  %pp = getelementptr inbounds float, float* %p, i32 %i
  %pg = getelementptr inbounds float, float* %g, i32 %i
  %pm = getelementptr inbounds float, float* %m, i32 %i
  %pv = getelementptr inbounds float, float* %v, i32 %i
  %gi = load float, float* %pg, align 4
  %m0 = load float, float* %pm, align 4
  %v0 = load float, float* %pv, align 4
  %p0 = load float, float* %pp, align 4
  %bm = fmul float %beta1, %m0
  %cg = fmul float %c1, %gi
  %mi = fadd float %bm, %cg
  %bv = fmul float %beta2, %v0
  %c2g = fmul float %c2, %gi
  %gg = fmul float %c2g, %gi
  %vi = fadd float %bv, %gg
  store float %mi, float* %pm, align 4
  store float %vi, float* %pv, align 4
  %sq = call float @llvm.sqrt.f32(float %vi)
  %sb = fmul float %sq, %invSbc2
  %den = fadd float %sb, %eps
  %sm = fmul float %step, %mi
  %u = fdiv float %sm, %den
  %pd = fmul float %p0, %decay
  %pn = fsub float %pd, %u
  store float %pn, float* %pp, align 4
  %in = add nuw nsw i32 %i, 1
  %cond = icmp slt i32 %in, %n
  br i1 %cond, label %loop, label %done
done:
  ret void
}

; reflect: applies the Householder reflector I − τ·u·uᵀ (u of length len) to ncols columns
; x_j = x + j·stride (doubles), as symeig.ts applyReflector() does in JS:
;   g = τ·Σ_k u[k]·x_j[k];  x_j[k] = x_j[k] − g·u[k]
define void @reflect(double* noalias %u, double* noalias %x, i32 %len, double %tau, i32 %ncols, i32 %stride) #3 {
entry:
  %hasc = icmp sgt i32 %ncols, 0
  %hasl = icmp sgt i32 %len, 0
  %any = and i1 %hasc, %hasl
  br i1 %any, label %col, label %done
col:
  %j = phi i32 [0, %entry], [%jn, %upd.end]
  %off = mul nsw i32 %j, %stride
  %xj = getelementptr inbounds double, double* %x, i32 %off
  br label %dot
dot:
  %k = phi i32 [0, %col], [%kn, %dot]
  %acc = phi double [0.0, %col], [%accn, %dot]
  %pu = getelementptr inbounds double, double* %u, i32 %k
  %px = getelementptr inbounds double, double* %xj, i32 %k
  %uk = load double, double* %pu, align 8
  %xk = load double, double* %px, align 8
  %m = fmul double %uk, %xk
  %accn = fadd reassoc double %acc, %m
  %kn = add nuw nsw i32 %k, 1
  %dc = icmp slt i32 %kn, %len
  br i1 %dc, label %dot, label %dot.end
dot.end:
  %g = fmul double %tau, %accn
  br label %upd
upd:
  %i = phi i32 [0, %dot.end], [%in, %upd]
  %pu2 = getelementptr inbounds double, double* %u, i32 %i
  %px2 = getelementptr inbounds double, double* %xj, i32 %i
  %ui = load double, double* %pu2, align 8
  %xi = load double, double* %px2, align 8
  %gu = fmul double %g, %ui
  %nx = fsub double %xi, %gu
  store double %nx, double* %px2, align 8
  %in = add nuw nsw i32 %i, 1
  %uc = icmp slt i32 %in, %len
  br i1 %uc, label %upd, label %upd.end
upd.end:
  %jn = add nuw nsw i32 %j, 1
  %cc = icmp slt i32 %jn, %ncols
  br i1 %cc, label %col, label %done
done:
  ret void
}

; dot2: two dot products sharing y, as gram.ts gramRows() forms two Gram entries at once:
;   out[0] = Σ_k x0[k]·y[k];  out[1] = Σ_k x1[k]·y[k]
define void @dot2(double* noalias %x0, double* noalias %x1, double* noalias %y, i32 %len, double* noalias %out) #4 {
entry:
  %has = icmp sgt i32 %len, 0
  br i1 %has, label %loop, label %done
loop:
  %k = phi i32 [0, %entry], [%kn, %loop]
  %a0 = phi double [0.0, %entry], [%a0n, %loop]
  %a1 = phi double [0.0, %entry], [%a1n, %loop]
  %p0 = getelementptr inbounds double, double* %x0, i32 %k
  %p1 = getelementptr inbounds double, double* %x1, i32 %k
  %py = getelementptr inbounds double, double* %y, i32 %k
  %v0 = load double, double* %p0, align 8
  %v1 = load double, double* %p1, align 8
  %vy = load double, double* %py, align 8
  %m0 = fmul double %v0, %vy
  %m1 = fmul double %v1, %vy
  %a0n = fadd reassoc double %a0, %m0
  %a1n = fadd reassoc double %a1, %m1
  %kn = add nuw nsw i32 %k, 1
  %c = icmp slt i32 %kn, %len
  br i1 %c, label %loop, label %done
done:
  %f0 = phi double [0.0, %entry], [%a0n, %loop]
  %f1 = phi double [0.0, %entry], [%a1n, %loop]
  store double %f0, double* %out, align 8
  %o1 = getelementptr inbounds double, double* %out, i32 1
  store double %f1, double* %o1, align 8
  ret void
}

; rotseq: one QL sweep's plane rotations, as symeig.ts tql() applies them: for i from hi−1 down
; to lo, columns i and i+1 of the column-major n×n matrix v are rotated by (c[i], s[i]) exactly
; as @rot does, in one call per sweep instead of one per rotation (1.2× the eigen-decomposition
; of NMTune's 128×128 Gram; at 256×256 the rotations are compute-bound and it gains nothing).
; Each row's result depends only on that row, so the sweep runs over blocks of 32 rows: the
; same operations, in the same order, for every element (results are bitwise those of @rot).
define void @rotseq(double* noalias %v, i32 %n, i32 %lo, i32 %hi, double* noalias %c, double* noalias %s) #5 {
entry:
  %any = icmp slt i32 %lo, %hi
  %hasn = icmp sgt i32 %n, 0
  %go = and i1 %any, %hasn
  br i1 %go, label %block, label %done
block:
  %r0 = phi i32 [0, %entry], [%r0n, %block.end]
  %rest = sub nsw i32 %n, %r0
  %small = icmp slt i32 %rest, 32
  %len = select i1 %small, i32 %rest, i32 32
  %i0 = add nsw i32 %hi, -1
  br label %sweep
sweep:
  %i = phi i32 [%i0, %block], [%in, %sweep]
  %pc = getelementptr inbounds double, double* %c, i32 %i
  %ps = getelementptr inbounds double, double* %s, i32 %i
  %ci = load double, double* %pc, align 8
  %si = load double, double* %ps, align 8
  %ox = mul nsw i32 %i, %n
  %ox2 = add nsw i32 %ox, %r0
  %oy = add nsw i32 %ox2, %n
  %px = getelementptr inbounds double, double* %v, i32 %ox2
  %py = getelementptr inbounds double, double* %v, i32 %oy
  call void @rot(double* %px, double* %py, i32 %len, double %ci, double %si)
  %in = add nsw i32 %i, -1
  %more = icmp sge i32 %in, %lo
  br i1 %more, label %sweep, label %block.end
block.end:
  %r0n = add nsw i32 %r0, 32
  %bmore = icmp slt i32 %r0n, %n
  br i1 %bmore, label %block, label %done
done:
  ret void
}

declare float @llvm.sqrt.f32(float)

attributes #0 = { "wasm-export-name"="fused2" }
attributes #1 = { "wasm-export-name"="rot" }
attributes #2 = { "wasm-export-name"="adamw" }
attributes #3 = { "wasm-export-name"="reflect" }
attributes #4 = { "wasm-export-name"="dot2" }
attributes #5 = { "wasm-export-name"="rotseq" }
