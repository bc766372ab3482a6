//! Optimisers from the book (パラメータの更新): SGD, Momentum, AdaGrad and Adam, each
//! updating a network's parameters from their gradients, tensor by tensor by name
//! (`W1`, `b1`, ...), as the book's `update(params, grads)` walks two dictionaries.
//! Each optimiser's formula is written once, for one number, as a closure that
//! `update_with_one_state` or `update_with_two_states` applies to every element of a
//! tensor (in parallel chunks: module `kernels::elementwise`).
//!
//! One departure from the book's formulas: Momentum, AdaGrad and Adam count gradients and
//! state smaller than 1e-30 as zero. A weight whose gradient stays zero has state that
//! decays into the *subnormal* floats, which x86 processors compute about a hundred
//! times slower; at that size the state no longer moves any weight anyway (the function
//! `flush_tiny` in the source says why, with the numbers).

use ndarray::{ArrayViewD, ArrayViewMutD};

use super::kernels::elementwise::{update_with_one_state, update_with_two_states};
use super::kernels::threads::on_worker;
use super::params::{Params, ParamsMut};

/// Something that updates parameters from their gradients, one step at a time.
///
/// ```
/// use cnn_from_scratch::full_cnn::{Optimizer, Sgd, SimpleConvNetConfig, simple_conv_net};
/// use ndarray::{Array1, Array4};
/// let config = SimpleConvNetConfig { input: (1, 8, 8), filter_num: 2, filter_size: 3, hidden: 8,
///                                    weight_scale: 0.1, ..Default::default() };
/// let mut net = simple_conv_net(&config, 1).unwrap();
/// let (x, t) = (Array4::<f32>::ones((4, 1, 8, 8)), Array1::from(vec![1u8, 1, 1, 1]));
/// let mut sgd = Sgd::default();
/// let before = net.loss(x.view(), t.view());
/// for _ in 0..20 {
///     let (_, grads) = net.gradient(x.view(), t.view());
///     sgd.update(net.params_mut(), &grads);
/// }
/// assert!(net.loss(x.view(), t.view()) < before);
/// ```
pub trait Optimizer {
    /// One update of `params` (a network's [`Network::params_mut`](super::Network::params_mut),
    /// or a [`Params::view_mut`]) given `grads` of the same names and shapes.
    fn update(&mut self, params: ParamsMut<'_>, grads: &Params);
}

/// Each parameter with its gradient, panicking with the names and shapes if the two lists
/// do not match (a programming error: gradients come from the same network).
fn with_grads<'p, 'g>(
    params: &'p mut ParamsMut<'_>,
    grads: &'g Params,
) -> Vec<(ArrayViewMutD<'p, f32>, ArrayViewD<'g, f32>)> {
    let params = params.named_mut();
    assert_eq!(
        params.len(),
        grads.count(),
        "optimizer: {} parameters but {} gradients ({})",
        params.len(),
        grads.count(),
        grads.names().join(", ")
    );
    params
        .into_iter()
        .zip(grads.named())
        .map(|((name, p), (grad_name, g))| {
            assert!(
                name == grad_name && p.shape() == g.shape(),
                "optimizer: parameter {name} {:?} does not match gradient {grad_name} {:?}",
                p.shape(),
                g.shape()
            );
            (p, g)
        })
        .collect()
}

/// Below this size, a gradient or an optimiser's state counts as zero ([`flush_tiny`]).
const TINY: f32 = 1e-30;

/// `x`, or zero if it is smaller than [`TINY`].
///
/// Why: the state of a weight whose gradient stays zero (a hidden unit that no image
/// activates) decays step after step (Adam's `m` by 0.9, `v` by 0.999, Momentum's `v` by
/// 0.9) until it falls below `f32::MIN_POSITIVE` (1.2e-38) into the *subnormal* floats,
/// which x86 processors compute with a slow microcode path, about a hundred times slower
/// than normal numbers. Training SimpleConvNet on MNIST, after the first epoch's 600
/// steps Adam took a quarter of each step's time (27% of the CPU time in a profile; its
/// epochs went from 2.8 s to 4.0-4.5 s). Counted as zero from 1e-30 on, such a number
/// never gets there, and the weights come out the same: a state this small moves a
/// weight by at most `lr * 1e-30 / 1e-7`, 1e-26, below the rounding step of any weight
/// larger than about 1e-18 (Adam's `sqrt(v)` below 1e-15 vanishes next to its 1e-7 the
/// same way).
#[inline(always)]
fn flush_tiny(x: f32) -> f32 {
    if x.abs() < TINY { 0.0 } else { x }
}

/// The square root of [`TINY`]: gradients below it have squares below it.
const TINY_ROOT: f32 = 1e-15;

/// `g²`, or zero where it would be smaller than [`TINY`] (and so perhaps subnormal, see
/// [`flush_tiny`]).
#[inline(always)]
fn square_or_zero(g: f32) -> f32 {
    if g.abs() < TINY_ROOT { 0.0 } else { g * g }
}

/// Stochastic gradient descent, `W <- W - lr * dW`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sgd {
    /// Learning rate (book default 0.01).
    pub lr: f32,
}

impl Default for Sgd {
    fn default() -> Self {
        Self { lr: 0.01 }
    }
}

impl Optimizer for Sgd {
    fn update(&mut self, mut params: ParamsMut<'_>, grads: &Params) {
        for (mut p, g) in with_grads(&mut params, grads) {
            p.scaled_add(-self.lr, &g);
        }
    }
}

/// Momentum SGD: a velocity that accumulates gradients like a ball rolling downhill,
/// `v <- momentum * v - lr * dW`, `W <- W + v`.
#[derive(Debug, Clone, PartialEq)]
pub struct Momentum {
    /// Learning rate (book default 0.01).
    pub lr: f32,
    /// How much velocity is kept per step (book default 0.9).
    pub momentum: f32,
    v: Option<Params>,
}

impl Momentum {
    /// Momentum with the given learning rate and momentum.
    pub fn new(lr: f32, momentum: f32) -> Self {
        Self {
            lr,
            momentum,
            v: None,
        }
    }
}

impl Default for Momentum {
    fn default() -> Self {
        Self::new(0.01, 0.9)
    }
}

impl Optimizer for Momentum {
    fn update(&mut self, mut params: ParamsMut<'_>, grads: &Params) {
        let (lr, momentum) = (self.lr, self.momentum);
        let v = self.v.get_or_insert_with(|| grads.zeros_like());
        on_worker(|| {
            for ((p, g), (_, v)) in with_grads(&mut params, grads)
                .into_iter()
                .zip(v.named_mut())
            {
                update_with_one_state(p, g, v, |p, g, v| {
                    *v = flush_tiny(momentum * *v - lr * flush_tiny(g));
                    *p += *v;
                });
            }
        });
    }
}

/// AdaGrad: each parameter's step shrinks with the sum of its squared gradients,
/// `h <- h + dW²`, `W <- W - lr * dW / (sqrt(h) + 1e-7)`.
#[derive(Debug, Clone, PartialEq)]
pub struct AdaGrad {
    /// Learning rate (book default 0.01).
    pub lr: f32,
    h: Option<Params>,
}

impl AdaGrad {
    /// AdaGrad with the given learning rate.
    pub fn new(lr: f32) -> Self {
        Self { lr, h: None }
    }
}

impl Default for AdaGrad {
    fn default() -> Self {
        Self::new(0.01)
    }
}

impl Optimizer for AdaGrad {
    fn update(&mut self, mut params: ParamsMut<'_>, grads: &Params) {
        let lr = self.lr;
        let h = self.h.get_or_insert_with(|| grads.zeros_like());
        on_worker(|| {
            for ((p, g), (_, h)) in with_grads(&mut params, grads)
                .into_iter()
                .zip(h.named_mut())
            {
                update_with_one_state(p, g, h, |p, g, h| {
                    let g = flush_tiny(g);
                    *h += square_or_zero(g);
                    *p -= lr * g / (h.sqrt() + 1e-7);
                });
            }
        });
    }
}

/// Adam, as the book writes it: moving averages of the gradient (`m`) and of its square
/// (`v`), with the bias correction folded into the learning rate,
///
/// ```text
/// lr_t = lr * sqrt(1 - beta2^t) / (1 - beta1^t)
/// m <- m + (1 - beta1) (dW - m)      v <- v + (1 - beta2) (dW² - v)
/// W <- W - lr_t * m / (sqrt(v) + 1e-7)
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Adam {
    /// Learning rate (book default 0.001).
    pub lr: f32,
    /// Decay of the gradient average (book default 0.9).
    pub beta1: f32,
    /// Decay of the squared-gradient average (book default 0.999).
    pub beta2: f32,
    iter: i32,
    m: Option<Params>,
    v: Option<Params>,
}

impl Adam {
    /// Adam with the given learning rate and decays.
    pub fn new(lr: f32, beta1: f32, beta2: f32) -> Self {
        Self {
            lr,
            beta1,
            beta2,
            iter: 0,
            m: None,
            v: None,
        }
    }
}

impl Default for Adam {
    fn default() -> Self {
        Self::new(0.001, 0.9, 0.999)
    }
}

impl Optimizer for Adam {
    fn update(&mut self, mut params: ParamsMut<'_>, grads: &Params) {
        let (beta1, beta2) = (self.beta1, self.beta2);
        self.iter += 1;
        let lr_t = self.lr * (1.0 - beta2.powi(self.iter)).sqrt() / (1.0 - beta1.powi(self.iter));
        let m = self.m.get_or_insert_with(|| grads.zeros_like());
        let v = self.v.get_or_insert_with(|| grads.zeros_like());
        on_worker(|| {
            for ((p, g), ((_, m), (_, v))) in with_grads(&mut params, grads)
                .into_iter()
                .zip(m.named_mut().into_iter().zip(v.named_mut()))
            {
                update_with_two_states(p, g, m, v, |p, g, m, v| {
                    let g = flush_tiny(g);
                    *m = flush_tiny(*m + (1.0 - beta1) * (g - *m));
                    *v = flush_tiny(*v + (1.0 - beta2) * (square_or_zero(g) - *v));
                    *p -= lr_t * *m / (v.sqrt() + 1e-7);
                });
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::ArrayD;

    /// Parameters that are all `value`, in small shapes.
    fn filled(value: f32) -> Params {
        let mut p = Params::new();
        for (name, shape) in [
            ("W1", vec![2, 1, 2, 2]),
            ("b1", vec![2]),
            ("W2", vec![3, 2]),
        ] {
            p.push(name, ArrayD::from_elem(shape, value));
        }
        p
    }

    fn all_close(p: &Params, expected: f32) {
        for (name, t) in p.named() {
            for &v in t.iter() {
                assert!((v - expected).abs() < 1e-6, "{name}: {v} != {expected}");
            }
        }
    }

    /// Gradients for the subnormal tests, step by step: every weight gets ordinary
    /// gradients for 30 steps; then a third of them get none (a unit no image activates
    /// any more), a third tiny ones (1e-20 and 1e-36, whose squares are subnormal or
    /// zero), a third ordinary ones still.
    fn stopping_gradient(step: usize, i: usize) -> f32 {
        let ordinary = ((i * 7 + step * 3) % 11) as f32 / 11.0 - 0.5;
        match (step < 30, i % 3) {
            (true, _) | (false, 2) => ordinary,
            (false, 0) => 0.0,
            _ => {
                if i.is_multiple_of(2) {
                    1e-20
                } else {
                    -1e-36
                }
            }
        }
    }

    /// Runs `optimizer` for `steps` steps on 60 weights from 0.1 to 0.69 with
    /// [`stopping_gradient`], and the book's formula `plain(step, p, g, state)` in plain
    /// f32 on the same numbers; returns both final weights, and whether the plain
    /// formula's state was ever subnormal (so that the test reaches the case).
    fn against_plain<O: Optimizer, S: Default + Clone>(
        optimizer: &mut O,
        steps: usize,
        plain: impl Fn(i32, &mut f32, f32, &mut S) -> bool,
    ) -> (Vec<f32>, Vec<f32>, bool) {
        let start: Vec<f32> = (0..60).map(|i| 0.1 + i as f32 * 0.01).collect();
        let mut params = Params::new();
        params.push(
            "W",
            ArrayD::from_shape_vec(vec![60], start.clone()).unwrap(),
        );
        let (mut expected, mut states) = (start, vec![S::default(); 60]);
        let mut subnormal = false;
        for step in 0..steps {
            let g: Vec<f32> = (0..60).map(|i| stopping_gradient(step, i)).collect();
            let mut grads = Params::new();
            grads.push("W", ArrayD::from_shape_vec(vec![60], g.clone()).unwrap());
            optimizer.update(params.view_mut(), &grads);
            for ((p, g), state) in expected.iter_mut().zip(g).zip(&mut states) {
                subnormal |= plain(step as i32 + 1, p, g, state);
            }
        }
        let got = params.get("W").unwrap().iter().copied().collect();
        (got, expected, subnormal)
    }

    /// Adam's and Momentum's state of a weight whose gradient stops decays towards zero;
    /// it never turns subnormal here (slow on x86, see `flush_tiny`), where the book's
    /// formulas in plain f32 go through subnormal numbers, and the weights come out the
    /// same, bit for bit, as from those formulas. (Adam with beta2 = 0.9, so that `v`
    /// decays within the test's steps as `m` does.) AdaGrad's sum of squares only grows,
    /// but the book's formula squares the tiny gradients into subnormal numbers; its
    /// weights too come out the same.
    #[test]
    fn decaying_state_never_turns_subnormal_and_the_weights_match_the_book() {
        let (lr, beta1, beta2) = (0.001f32, 0.9f32, 0.9f32);
        let mut adam = Adam::new(lr, beta1, beta2);
        let book_adam = |t: i32, p: &mut f32, g: f32, (m, v): &mut (f32, f32)| {
            let lr_t = lr * (1.0 - beta2.powi(t)).sqrt() / (1.0 - beta1.powi(t));
            *m += (1.0 - beta1) * (g - *m);
            *v += (1.0 - beta2) * (g * g - *v);
            *p -= lr_t * *m / (v.sqrt() + 1e-7);
            m.is_subnormal() || v.is_subnormal()
        };
        let (got, expected, subnormal) = against_plain(&mut adam, 2000, book_adam);
        assert!(
            subnormal,
            "the plain formulas never reached a subnormal state"
        );
        assert_eq!(got, expected, "Adam");
        for (name, state) in [("m", &adam.m), ("v", &adam.v)] {
            let state = state.as_ref().unwrap().get("W").unwrap();
            assert!(state.iter().all(|x| !x.is_subnormal()), "Adam's {name}");
            // The stopped weights' state did reach zero.
            assert!(state.iter().step_by(3).all(|&x| x == 0.0), "Adam's {name}");
        }

        let mut momentum = Momentum::new(0.01, 0.9);
        let book_momentum = |_: i32, p: &mut f32, g: f32, v: &mut f32| {
            *v = 0.9 * *v - 0.01 * g;
            *p += *v;
            v.is_subnormal()
        };
        let (got, expected, subnormal) = against_plain(&mut momentum, 2000, book_momentum);
        assert!(
            subnormal,
            "the plain momentum never reached a subnormal velocity"
        );
        assert_eq!(got, expected, "Momentum");
        let v = momentum.v.as_ref().unwrap().get("W").unwrap();
        assert!(v.iter().all(|x| !x.is_subnormal()), "Momentum's velocity");

        let mut adagrad = AdaGrad::new(0.01);
        let book_adagrad = |_: i32, p: &mut f32, g: f32, h: &mut f32| {
            *h += g * g;
            *p -= 0.01 * g / (h.sqrt() + 1e-7);
            (g * g).is_subnormal() || h.is_subnormal()
        };
        let (got, expected, subnormal) = against_plain(&mut adagrad, 2000, book_adagrad);
        assert!(
            subnormal,
            "the plain AdaGrad never squared into a subnormal"
        );
        assert_eq!(got, expected, "AdaGrad");
    }

    #[test]
    fn sgd_step_by_hand() {
        let mut p = filled(1.0);
        Sgd::default().update(p.view_mut(), &filled(0.5));
        all_close(&p, 1.0 - 0.01 * 0.5);
    }

    #[test]
    fn momentum_two_steps_by_hand() {
        let (mut p, g) = (filled(1.0), filled(0.5));
        let mut opt = Momentum::default();
        opt.update(p.view_mut(), &g); // v = -0.005
        all_close(&p, 0.995);
        opt.update(p.view_mut(), &g); // v = 0.9 * -0.005 - 0.005 = -0.0095
        all_close(&p, 0.9855);
    }

    #[test]
    fn adagrad_steps_shrink_by_hand() {
        let (mut p, g) = (filled(1.0), filled(0.5));
        let mut opt = AdaGrad::default();
        opt.update(p.view_mut(), &g); // h = 0.25: step 0.01 * 0.5 / 0.5 = 0.01
        all_close(&p, 0.99);
        opt.update(p.view_mut(), &g); // h = 0.5: step 0.01 * 0.5 / sqrt(0.5)
        all_close(&p, 0.99 - 0.01 * 0.5 / 0.5f32.sqrt());
    }

    #[test]
    fn adams_first_steps_move_by_the_learning_rate() {
        // With a constant gradient g, m_t / sqrt(v_t) with the bias correction is exactly
        // sign(g) at every step, so each step moves by lr (up to the 1e-7 epsilon).
        let (mut p, g) = (filled(1.0), filled(0.5));
        let mut opt = Adam::default();
        for step in 1..=3 {
            opt.update(p.view_mut(), &g);
            all_close(&p, 1.0 - 0.001 * step as f32);
        }
    }
}
