//! A network's parameters by name (the book's `self.params` dictionary): `W1 b1 W2 b2 ...`.
//!
//! The book keeps every weight of a network in one dictionary, `params["W1"]`, and the
//! gradients in another of the same keys, so an optimiser can walk both side by side.
//! [`Params`] is that dictionary: an ordered list of named tensors. It holds gradients
//! (from [`Network::gradient`](super::Network::gradient)), an optimiser's running averages,
//! parameters read from a file, or a copy of a network's weights
//! ([`Network::params`](super::Network::params)). [`ParamsMut`] is the same list as views
//! *into* a network's layers, so an optimiser or a gradient check can change the weights
//! where they live.
//!
//! Names follow the book: the k-th layer that has weights (counting from 1) contributes
//! `Wk` and `bk`.

use std::ops::Index;

use ndarray::{ArrayD, ArrayViewD, ArrayViewMutD};

/// Named tensors in a fixed order, e.g. `W1 b1 W2 b2 W3 b3` for SimpleConvNet.
///
/// ```
/// use cnn_from_scratch::full_cnn::Params;
/// use ndarray::ArrayD;
/// let mut p = Params::new();
/// p.push("W1", ArrayD::zeros(vec![3, 2]));
/// p.push("b1", ArrayD::zeros(vec![2]));
/// assert_eq!(p.names(), vec!["W1", "b1"]);
/// assert_eq!(p["W1"].shape(), &[3, 2]);
/// assert_eq!(p.len(), 8);                 // numbers, over all tensors
/// ```
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Params {
    tensors: Vec<(String, ArrayD<f32>)>,
}

impl Params {
    /// No tensors yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends a tensor under `name`. Panics if the name is taken (a programming error).
    pub fn push(&mut self, name: impl Into<String>, tensor: ArrayD<f32>) {
        let name = name.into();
        assert!(
            self.get(&name).is_none(),
            "Params::push: a tensor named {name} is already there"
        );
        self.tensors.push((name, tensor));
    }

    /// The tensor called `name`, if there is one.
    pub fn get(&self, name: &str) -> Option<&ArrayD<f32>> {
        self.tensors.iter().find(|(n, _)| n == name).map(|(_, t)| t)
    }

    /// The tensors' names, in order.
    pub fn names(&self) -> Vec<&str> {
        self.tensors.iter().map(|(n, _)| n.as_str()).collect()
    }

    /// `(name, tensor)` pairs, in order.
    pub fn named(&self) -> Vec<(&str, ArrayViewD<'_, f32>)> {
        self.tensors
            .iter()
            .map(|(n, t)| (n.as_str(), t.view()))
            .collect()
    }

    /// `(name, tensor)` pairs as mutable views, in order.
    pub fn named_mut(&mut self) -> Vec<(&str, ArrayViewMutD<'_, f32>)> {
        self.tensors
            .iter_mut()
            .map(|(n, t)| (n.as_str(), t.view_mut()))
            .collect()
    }

    /// The same list as mutable views, the form optimisers take.
    pub fn view_mut(&mut self) -> ParamsMut<'_> {
        ParamsMut {
            tensors: self
                .tensors
                .iter_mut()
                .map(|(n, t)| (n.clone(), t.view_mut()))
                .collect(),
        }
    }

    /// Zeros of the same names and shapes (a fresh gradient, or an optimiser's state).
    pub fn zeros_like(&self) -> Params {
        Params {
            tensors: self
                .tensors
                .iter()
                .map(|(n, t)| (n.clone(), ArrayD::zeros(t.raw_dim())))
                .collect(),
        }
    }

    /// Number of tensors.
    pub fn count(&self) -> usize {
        self.tensors.len()
    }

    /// Total number of numbers in all tensors (a network's parameter count).
    pub fn len(&self) -> usize {
        self.tensors.iter().map(|(_, t)| t.len()).sum()
    }

    /// `true` if there are no numbers at all.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Consumes the list, giving the `(name, tensor)` pairs.
    pub fn into_vec(self) -> Vec<(String, ArrayD<f32>)> {
        self.tensors
    }
}

impl Index<&str> for Params {
    type Output = ArrayD<f32>;

    /// `params["W1"]`; panics naming the tensors there if `name` is not one of them.
    fn index(&self, name: &str) -> &ArrayD<f32> {
        self.get(name).unwrap_or_else(|| {
            panic!(
                "no tensor named {name} (the tensors are {})",
                self.names().join(", ")
            )
        })
    }
}

/// Mutable views of named tensors, in order: a network's weights where they live (from
/// [`Network::params_mut`](super::Network::params_mut)) or a [`Params`]'
/// ([`Params::view_mut`]).
#[derive(Debug)]
pub struct ParamsMut<'a> {
    pub(crate) tensors: Vec<(String, ArrayViewMutD<'a, f32>)>,
}

impl<'a> ParamsMut<'a> {
    /// `(name, tensor)` pairs, in order.
    pub fn named_mut(&mut self) -> Vec<(&str, ArrayViewMutD<'_, f32>)> {
        self.tensors
            .iter_mut()
            .map(|(n, t)| (n.as_str(), t.view_mut()))
            .collect()
    }

    /// The tensor called `name`, to change in place.
    pub fn get_mut(&mut self, name: &str) -> Option<&mut ArrayViewMutD<'a, f32>> {
        self.tensors
            .iter_mut()
            .find(|(n, _)| n == name)
            .map(|(_, t)| t)
    }

    /// A shorter-lived copy of the views, to hand to an optimiser and keep these.
    pub fn reborrow(&mut self) -> ParamsMut<'_> {
        ParamsMut {
            tensors: self
                .tensors
                .iter_mut()
                .map(|(n, t)| (n.clone(), t.view_mut()))
                .collect(),
        }
    }

    /// The views themselves, in order.
    pub fn into_vec(self) -> Vec<(String, ArrayViewMutD<'a, f32>)> {
        self.tensors
    }
}
