// Row-level panel-effects model, Gaussian residuals, with the practice intercepts integrated out
// analytically (sufficient statistics).  Mirrors hepcausal.models.panel_effects.build_pymc_model
// when hepcausal.models.panel_marginal.is_marginalised: the parameters (minus unit_raw) and
// priors of models/panel_effects.stan.  The mean is x . theta with
// theta = (level cells m_g + tau_t + sigma_cell dc(z)_gt, gradient cells b_g + beta_t
//          + sigma_cell_gradient dc(v)_gt, ICB trends, effects, covariates) (cells row-major),
// the practice deviation u_i ~ N(0, sigma_unit) is integrated out, and the likelihood is
// -0.5 sum_sj [count log v + (syy - 2 theta'sxy + theta'Sxx theta) / v] over blocks (stratum s,
// block j): j = 1 within practices (v = sigma_s^2), j > 1 practice means of size n
// (v = sigma_unit^2 + sigma_s^2 / n); strata are ICBs (use_scales) or one.
functions {
  matrix double_centre(matrix z) {
    int G = rows(z);
    int T = cols(z);
    return z - rep_matrix(z * rep_vector(1.0 / T, T), T)
           - rep_matrix(rep_row_vector(1.0 / G, G) * z, G) + mean(z);
  }
}
data {
  int<lower=1> n_group;
  int<lower=1> n_time;
  matrix[n_time, n_time - 1] Q_year;
  int<lower=0> K;
  int<lower=0> P;
  int<lower=0, upper=1> use_cell;
  int<lower=0, upper=1> use_trend;
  int<lower=0, upper=1> use_gradient;
  int<lower=0, upper=1> use_cell_gradient;
  int<lower=0, upper=1> use_scales;
  real<lower=0> prior_group_sd;
  real<lower=0> prior_year_sd;
  real<lower=0> prior_unit_sigma;
  real<lower=0> prior_cell_sigma;
  real<lower=0> prior_trend_sigma;
  real<lower=0> prior_gradient_sd;
  real<lower=0> prior_cell_gradient_sigma;
  real<lower=0> prior_effect_sd;
  real<lower=0> prior_covariate_sd;
  real<lower=0> prior_noise_sigma;
  real<lower=0> prior_scale_sd;
  // sufficient statistics (hepcausal.models.panel_marginal.stan_marginal_data)
  int<lower=1> S;
  int<lower=1> J;
  int<lower=1> n_theta;
  matrix<lower=0>[S, J - 1] n_per;
  matrix<lower=0>[S, J] count;
  matrix[S, J] syy;
  matrix[n_theta, S * J] sxy;  // block (s, j) in column (s - 1) J + j
  int<lower=0> nnz;
  matrix[nnz, J] sxx;
  array[nnz] int<lower=1, upper=n_theta> row_idx;
  array[nnz] int<lower=1, upper=n_theta> col_idx;
  array[nnz] int<lower=1, upper=S> strat_idx;
  real log_const;
}
parameters {
  vector[n_group] group_mean;
  vector[n_time - 1] year_raw;
  real<lower=0> sigma_unit;
  array[use_cell] real<lower=0> sigma_cell;
  matrix[use_cell * n_group, use_cell * n_time] z_cell;
  array[use_trend] real<lower=0> sigma_trend;
  vector[use_trend * n_group] z_trend;
  vector[use_gradient * n_group] gradient_group;
  vector[use_gradient * (n_time - 1)] gradient_year_raw;
  array[use_cell_gradient] real<lower=0> sigma_cell_gradient;
  matrix[use_cell_gradient * n_group, use_cell_gradient * n_time] z_cell_gradient;
  vector[K] effect;
  vector[P] beta_cov;
  real<lower=0> sigma;
  array[use_scales] real<lower=0> sigma_scale;
  vector[use_scales * n_group] z_scale;
}
transformed parameters {
  vector[n_time] year_effect = Q_year * year_raw;
  vector[use_gradient * n_time] gradient_year;
  if (use_gradient) gradient_year = Q_year * gradient_year_raw;
}
model {
  int GT = n_group * n_time;
  vector[n_theta] theta;
  matrix[n_group, n_time] level = rep_matrix(group_mean, n_time)
                                  + rep_matrix(year_effect', n_group);
  if (use_cell) level += sigma_cell[1] * double_centre(z_cell);
  theta[1:GT] = to_vector(level');
  int pos = GT;
  if (use_gradient) {
    matrix[n_group, n_time] slope = rep_matrix(gradient_group, n_time)
                                    + rep_matrix(gradient_year', n_group);
    if (use_cell_gradient) slope += sigma_cell_gradient[1] * double_centre(z_cell_gradient);
    theta[(pos + 1):(pos + GT)] = to_vector(slope');
    pos += GT;
  }
  if (use_trend) {
    theta[(pos + 1):(pos + n_group)] = sigma_trend[1] * (z_trend - mean(z_trend));
    pos += n_group;
  }
  theta[(pos + 1):(pos + K)] = effect;
  pos += K;
  theta[(pos + 1):(pos + P)] = beta_cov;
  vector[S] s2 = use_scales ? square(sigma * exp(sigma_scale[1] * z_scale))
                            : rep_vector(square(sigma), 1);
  matrix[S, J] v;
  v[:, 1] = s2;
  for (j in 2:J) v[:, j] = square(sigma_unit) + s2 ./ n_per[:, j - 1];
  matrix[S, J] w = inv(v);
  real quad = dot_product(rows_dot_product(sxx, w[strat_idx]), theta[row_idx] .* theta[col_idx]);
  real lin = dot_product(theta, sxy * to_vector(w'));
  target += log_const - 0.5 * (sum(count .* log(v)) + sum(syy .* w) - 2 * lin + quad);

  group_mean ~ normal(0, prior_group_sd);
  year_raw ~ normal(0, prior_year_sd);
  sigma_unit ~ normal(0, prior_unit_sigma);
  sigma_cell ~ normal(0, prior_cell_sigma);
  to_vector(z_cell) ~ std_normal();
  sigma_trend ~ normal(0, prior_trend_sigma);
  z_trend ~ std_normal();
  gradient_group ~ normal(0, prior_gradient_sd);
  gradient_year_raw ~ normal(0, prior_gradient_sd);
  sigma_cell_gradient ~ normal(0, prior_cell_gradient_sigma);
  to_vector(z_cell_gradient) ~ std_normal();
  effect ~ normal(0, prior_effect_sd);
  beta_cov ~ normal(0, prior_covariate_sd);
  sigma ~ normal(0, prior_noise_sigma);
  sigma_scale ~ normal(0, prior_scale_sd);
  z_scale ~ std_normal();
}
