// Pre/post panel model (mirrors hepcausal.models.panel_effects.build_pymc_prepost).
// One row per practice: d = post-period mean minus pre-period mean of the standardised outcome.
// d_i = change_mean + sigma_change z_g + (gradient_change_mean + sigma_change_gradient v_g) rbar_i
//       + X_eff effect + X_cov beta_cov + e_i,  e_i ~ normal / student_t(0, sigma_g / sqrt(w_i)),
// log sigma_g = log sigma + sigma_scale z_scale_g (use_scales); for the treated ICB (treated_g = 1)
// the SD of its log scale deviation is the fixed prior_treated_scale_sd (its own scale, unpooled).
// Pool ICBs (use_pool, pool_g = 1) inform only the spreads: their mean level and gradient changes
// are shifted by pool_change_shift and pool_gradient_change_shift.
// effect ~ normal(0, prior_effect_sd) is sampled as effect = prior_effect_sd * z_effect, except the
// level / gradient term paired with the treated ICB's own change (pair_level / pair_gradient, 1-based,
// 0 = none): with S = sqrt(e^2 + s^2) and a = z[treated], effect = (e^2 a + e s z_effect) / S and
// the treated ICB's change is S a - effect (the same joint prior; the data inform only the sum).
functions {
  // [effect, the treated ICB's own deviation] from the treated ICB's total change S a
  // (e: effect prior SD, s: SD of the ICBs' changes, a = z[treated], z = z_effect[pair])
  vector treated_split(real e, real s, real a, real z) {
    real tot = sqrt(square(e) + square(s));
    return [(square(e) * a + e * s * z) / tot, (square(s) * a - e * s * z) / tot]';
  }
}
data {
  int<lower=1> N;
  int<lower=1> n_group;
  array[N] int<lower=1, upper=n_group> grp;
  vector[N] d;
  vector[N] rank_c;
  int<lower=0> K;
  matrix[N, K] X_eff;
  int<lower=0, upper=K> pair_level;
  int<lower=0, upper=K> pair_gradient;
  int<lower=0> P;
  matrix[N, P] X_cov;
  int<lower=0, upper=1> use_cell;
  int<lower=0, upper=1> use_gradient;
  int<lower=0, upper=1> use_cell_gradient;
  int<lower=0, upper=1> use_scales;
  vector<lower=0, upper=1>[n_group] treated_g;
  int<lower=0, upper=1> use_pool;
  vector<lower=0, upper=1>[n_group] pool;
  int<lower=1, upper=2> family;
  vector<lower=0>[N] w;
  real<lower=0> prior_group_sd;
  real<lower=0> prior_cell_sigma;
  real<lower=0> prior_gradient_sd;
  real<lower=0> prior_cell_gradient_sigma;
  real<lower=0> prior_effect_sd;
  real<lower=0> prior_covariate_sd;
  real<lower=0> prior_noise_sigma;
  real<lower=0> prior_scale_sd;
  real<lower=0> prior_nu_scale;
  real<lower=0> prior_treated_scale_sd;
}
parameters {
  real change_mean;
  array[use_pool] real pool_change_shift;
  array[use_pool * use_gradient] real pool_gradient_change_shift;
  array[use_cell] real<lower=0> sigma_change;
  vector[use_cell * n_group] z_change;
  array[use_gradient] real gradient_change_mean;
  array[use_cell_gradient] real<lower=0> sigma_change_gradient;
  vector[use_cell_gradient * n_group] z_change_gradient;
  vector[K] z_effect;
  vector[P] beta_cov;
  real<lower=0> sigma;
  array[use_scales] real<lower=0> sigma_scale;
  vector[use_scales * n_group] z_scale;
  array[family == 2] real<lower=0> nu;
}
transformed parameters {
  vector[K] effect = prior_effect_sd * z_effect;
  if (pair_level > 0)
    effect[pair_level] = treated_split(prior_effect_sd, sigma_change[1],
                                       dot_product(treated_g, z_change), z_effect[pair_level])[1];
  if (pair_gradient > 0)
    effect[pair_gradient] = treated_split(prior_effect_sd, sigma_change_gradient[1],
                                          dot_product(treated_g, z_change_gradient),
                                          z_effect[pair_gradient])[1];
}
model {
  vector[N] mu = rep_vector(change_mean, N);
  if (use_pool) mu += pool_change_shift[1] * pool[grp];
  if (use_cell) {
    vector[n_group] dev = sigma_change[1] * z_change;
    if (pair_level > 0) {
      real dev_t = treated_split(prior_effect_sd, sigma_change[1],
                                 dot_product(treated_g, z_change), z_effect[pair_level])[2];
      dev = dev .* (1 - treated_g) + dev_t * treated_g;
    }
    mu += dev[grp];
  }
  if (use_gradient) {
    vector[N] slope = rep_vector(gradient_change_mean[1], N);
    if (use_pool) slope += pool_gradient_change_shift[1] * pool[grp];
    if (use_cell_gradient) {
      vector[n_group] dev = sigma_change_gradient[1] * z_change_gradient;
      if (pair_gradient > 0) {
        real dev_t = treated_split(prior_effect_sd, sigma_change_gradient[1],
                                   dot_product(treated_g, z_change_gradient),
                                   z_effect[pair_gradient])[2];
        dev = dev .* (1 - treated_g) + dev_t * treated_g;
      }
      slope += dev[grp];
    }
    mu += slope .* rank_c;
  }
  if (K > 0) mu += X_eff * effect;
  if (P > 0) mu += X_cov * beta_cov;
  vector[N] sd = sigma ./ sqrt(w);
  if (use_scales) {
    vector[n_group] dev_sd = sigma_scale[1] * (1 - treated_g) + prior_treated_scale_sd * treated_g;
    sd = sd .* exp(dev_sd .* z_scale)[grp];
  }

  change_mean ~ normal(0, prior_group_sd);
  pool_change_shift ~ normal(0, prior_group_sd);
  pool_gradient_change_shift ~ normal(0, prior_gradient_sd);
  sigma_change ~ normal(0, prior_cell_sigma);
  z_change ~ std_normal();
  gradient_change_mean ~ normal(0, prior_gradient_sd);
  sigma_change_gradient ~ normal(0, prior_cell_gradient_sigma);
  z_change_gradient ~ std_normal();
  z_effect ~ std_normal();
  beta_cov ~ normal(0, prior_covariate_sd);
  sigma ~ normal(0, prior_noise_sigma);
  sigma_scale ~ normal(0, prior_scale_sd);
  z_scale ~ std_normal();
  nu ~ gamma(2, inv(prior_nu_scale));
  if (family == 2) d ~ student_t(nu[1], mu, sd);
  else d ~ normal(mu, sd);
}
